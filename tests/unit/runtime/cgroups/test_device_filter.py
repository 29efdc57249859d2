"""The v2 device eBPF program, run through a small interpreter, decides like v1's lists."""

from __future__ import annotations

import struct

import pytest

from runtime.cgroups import DeviceRule, Resources
from runtime.cgroups import device_filter as df

M, R, W = df.ACC_MKNOD, df.ACC_READ, df.ACC_WRITE
B, C = df.DEV_BLOCK, df.DEV_CHAR


def run(prog: bytes, dev_type: int, access: int, major: int, minor: int) -> int:
    """Interpret the opcodes device_filter emits; returns r0 at EXIT."""
    ctx = struct.pack("<III", access << 16 | dev_type, major, minor)
    regs = [0] * 11
    regs[1] = -1  # the context pointer: only used as LDX's base
    pc = 0
    insns = [struct.unpack_from("<BBhi", prog, i) for i in range(0, len(prog), 8)]
    while True:
        code, regbyte, off, imm = insns[pc]
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        u32imm = imm & 0xFFFFFFFF
        if code == df.LDX_MEM_W:
            assert src == 1 and off in (0, 4, 8)
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == df.ALU32_AND_K:
            regs[dst] = (regs[dst] & u32imm) & 0xFFFFFFFF
        elif code == df.ALU32_RSH_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == df.ALU32_MOV_X:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == df.JMP32_JNE_K:
            pc += off if (regs[dst] & 0xFFFFFFFF) != u32imm else 0
        elif code == df.JMP32_JNE_X:
            pc += off if (regs[dst] & 0xFFFFFFFF) != (regs[src] & 0xFFFFFFFF) else 0
        elif code == df.MOV64_K:
            regs[dst] = imm
        elif code == df.EXIT:
            return regs[0]
        else:
            raise AssertionError(f"opcode {code:#x}")


RUNC_LIKE = Resources.from_oci({"devices": [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "b", "major": 4000000000, "minor": 1, "access": "rw"},
    {"allow": False, "type": "c", "major": 136, "minor": 7, "access": "w"},
]}).devices


@pytest.mark.parametrize(("dev_type", "access", "major", "minor", "allowed"), [
    (C, R | W, 1, 3, 1), (C, M, 1, 3, 1),
    (C, R, 1, 5, 1), (C, W, 1, 5, 0), (C, R | W, 1, 5, 0),
    (C, R, 136, 0, 1), (C, W, 136, 99, 1),
    (C, W, 136, 7, 0), (C, R, 136, 7, 1),  # the later deny covers only "w"
    (B, R, 4000000000, 1, 1), (B, M, 4000000000, 1, 0), (C, R, 4000000000, 1, 0),
    (B, R, 8, 0, 0), (C, R, 1, 8, 0),
])
def test_rules(dev_type: int, access: int, major: int, minor: int, allowed: int) -> None:
    prog = df.encode(df.compile_device_program(RUNC_LIKE))
    assert run(prog, dev_type, access, major, minor) == allowed


def test_no_rules_denies_everything_and_allow_all_allows() -> None:
    assert run(df.encode(df.compile_device_program([])), C, R, 1, 3) == 0
    prog = df.encode(df.compile_device_program([DeviceRule(True)]))
    assert run(prog, B, R | W | M, 8, 0) == 1
