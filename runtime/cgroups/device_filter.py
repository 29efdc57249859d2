"""The cgroup v2 device controller: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE.

cgroup v2 has no devices.allow/deny files; the kernel runs the program attached to the cgroup
on every device open/mknod and allows the access when it returns 1. The program is generated
from the OCI rules like runc's devicefilter: rules are checked last to first and the first
match decides (so the last matching rule wins, as with v1's lists); no match denies.

Context (struct bpf_cgroup_dev_ctx): u32 access_type = access << 16 | type; u32 major; u32 minor.
"""

from __future__ import annotations

import os
import struct

from runtime.cgroups.errors import CgroupError
from runtime.cgroups.resources import DeviceRule
from runtime.linux import libc
from runtime.records import dataclass

DEV_BLOCK, DEV_CHAR = 1, 2  # BPF_DEVCG_DEV_*
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4  # BPF_DEVCG_ACC_*
_ACCESS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}

# eBPF opcodes (include/uapi/linux/bpf.h, bpf_common.h)
LDX_MEM_W = 0x61  # dst = *(u32 *)(src + off)
ALU32_AND_K = 0x54
ALU32_RSH_K = 0x74
ALU32_MOV_X = 0xBC
JMP32_JNE_K = 0x56  # if (u32)dst != imm: pc += off
JMP32_JNE_X = 0x5E  # if (u32)dst != (u32)src: pc += off
MOV64_K = 0xB7
EXIT = 0x95

R0, R1, R2, R3, R4, R5 = range(6)


@dataclass(frozen=True)
class Insn:
    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self) -> bytes:
        imm = self.imm - (1 << 32) if self.imm >= 1 << 31 else self.imm  # s32 field
        return struct.pack("<BBhi", self.code, (self.src << 4) | self.dst, self.off, imm)


def compile_device_program(rules: tuple[DeviceRule, ...] | list[DeviceRule]) -> list[Insn]:
    """The eBPF program enforcing ``rules`` (see the module docstring)."""
    prog = [
        Insn(LDX_MEM_W, R2, R1, 0), Insn(ALU32_AND_K, R2, imm=0xFFFF),  # r2 = type
        Insn(LDX_MEM_W, R3, R1, 0), Insn(ALU32_RSH_K, R3, imm=16),  # r3 = access
        Insn(LDX_MEM_W, R4, R1, 4),  # r4 = major
        Insn(LDX_MEM_W, R5, R1, 8),  # r5 = minor
    ]
    for rule in reversed(rules):
        block = _rule_block(rule)
        prog += block
        if len(block) == 2:  # matches everything: what follows is unreachable, which the
            return prog      # verifier refuses
    return prog + [Insn(MOV64_K, R0, imm=0), Insn(EXIT)]


def _rule_block(rule: DeviceRule) -> list[Insn]:
    """Checks that jump past the block on mismatch, then ``return allow``."""
    checks: list[Insn] = []
    if rule.type != "a":
        checks.append(Insn(JMP32_JNE_K, R2, imm=DEV_BLOCK if rule.type == "b" else DEV_CHAR))
    access = sum(_ACCESS[c] for c in rule.access)
    if access != ACC_MKNOD | ACC_READ | ACC_WRITE:
        # The requested access must be a subset of the rule's: (r3 & access) == r3.
        checks += [Insn(ALU32_MOV_X, R1, R3), Insn(ALU32_AND_K, R1, imm=access),
                   Insn(JMP32_JNE_X, R1, R3)]
    if rule.major is not None:
        checks.append(Insn(JMP32_JNE_K, R4, imm=rule.major))
    if rule.minor is not None:
        checks.append(Insn(JMP32_JNE_K, R5, imm=rule.minor))
    tail = [Insn(MOV64_K, R0, imm=1 if rule.allow else 0), Insn(EXIT)]
    # Each jump skips what follows it in the block: the rest of the checks and the tail.
    out = []
    for i, insn in enumerate(checks):
        if insn.code in (JMP32_JNE_K, JMP32_JNE_X):
            insn = Insn(insn.code, insn.dst, insn.src, len(checks) - i - 1 + len(tail), insn.imm)
        out.append(insn)
    return out + tail


def encode(prog: list[Insn]) -> bytes:
    return b"".join(i.encode() for i in prog)


def attach_device_filter(cgroup_dir: str, rules: tuple[DeviceRule, ...]) -> None:
    """Load the program for ``rules`` and attach it to the cgroup2 directory, replacing the
    program attached before (attached without BPF_F_ALLOW_MULTI, so a new attach replaces).

    Raises:
        CgroupError: the kernel refused to load or attach (message has the verifier's log).
    """
    try:
        prog_fd = libc.bpf_prog_load(libc.BPF_PROG_TYPE_CGROUP_DEVICE,
                                     encode(compile_device_program(rules)))
    except OSError as e:
        raise CgroupError(f"linux.resources.devices: loading the device eBPF program: {e}") \
            from e
    try:
        dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            libc.bpf_prog_attach(dir_fd, prog_fd, libc.BPF_CGROUP_DEVICE)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise CgroupError(f"linux.resources.devices: attaching the device eBPF program to "
                          f"{cgroup_dir}: {e}") from e
    finally:
        os.close(prog_fd)
