"""Compile a ``SeccompProfile`` into a classic BPF program for seccomp(2).

Program shape (the one libseccomp generates, minus its binary-tree dispatch):

    ld arch; jeq AUDIT_ARCH_X86_64 -> x86_64; jeq AUDIT_ARCH_I386 -> i386; ret KILL_PROCESS
    x86_64: ld nr; jge X32_SYSCALL_BIT -> x32 body (or bad arch); else x86_64 body
    body:   jeq nr1 -> rules(nr1); jeq nr2 -> ...; ret default
    rules(nr): conditional rules in profile order, then the first unconditional one; ret default

Syscall names unknown to an architecture's table are skipped, as runc does, so one profile
serves every architecture. Arguments are unsigned 64-bit values compared as hi/lo 32-bit words
(seccomp_data is little-endian here); on i386 only the low word exists and is compared.
"""

from __future__ import annotations

from runtime.records import dataclass
from runtime.seccomp import bpf
from runtime.seccomp.errors import SeccompError
from runtime.seccomp.profile import (
    RET_ERRNO,
    RET_KILL_PROCESS,
    ArgCondition,
    SeccompProfile,
    SyscallRule,
)
from runtime.seccomp.syscall_table import I386, X32, X86_64

ENOSYS = 38
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
X32_SYSCALL_BIT = 0x40000000
BAD_ARCH = RET_KILL_PROCESS  # libseccomp's default bad-arch action is a kill too

_CHUNK = 128  # syscalls compared before a jump over their shared ret instructions

# seccomp_data offsets
OFF_NR = 0
OFF_ARCH = 4
OFF_ARGS = 16


_NEGATE = {"SCMP_CMP_LT": "SCMP_CMP_GE", "SCMP_CMP_LE": "SCMP_CMP_GT",
           "SCMP_CMP_NE": "SCMP_CMP_EQ"}


@dataclass(frozen=True)
class _Abi:
    name: str
    table: dict[str, int]
    wide: bool  # 64-bit arguments


_ABIS = {
    "SCMP_ARCH_X86_64": _Abi("x86_64", X86_64, True),
    "SCMP_ARCH_X32": _Abi("x32", X32, True),
    "SCMP_ARCH_X86": _Abi("i386", I386, False),
}


@dataclass(frozen=True)
class CompiledFilter:
    """A loadable filter: the BPF program and the SECCOMP_FILTER_FLAG_* bits.

    ``encoded``: the program's bytes when the filter was rebuilt from them (``from_bytes``):
    a filter compiled once per container travels to each exec's monitor as bytes. Such a
    filter has an empty ``program`` (decoding 1,000 instructions costs 0.4 ms, and loading
    needs only the bytes).
    """

    program: tuple[bpf.SockFilter, ...]
    flags: int
    encoded: bytes | None = None

    def encode(self) -> bytes:
        return self.encoded if self.encoded is not None else bpf.encode(list(self.program))

    @classmethod
    def from_bytes(cls, data: bytes, flags: int) -> CompiledFilter:
        """The filter whose ``encode()`` gave ``data``. Raises SeccompError on a torn program."""
        if not data or len(data) % bpf.INSN_SIZE:
            raise SeccompError(f"a BPF program of {len(data)} bytes is not whole instructions")
        return cls((), flags, data)


def compile_filter(profile: SeccompProfile) -> CompiledFilter:
    """Compile ``profile`` (see the module docstring for the program's shape).

    Raises:
        SeccompError: the program exceeds the kernel's 4096-instruction limit.
    """
    items: list[bpf.Item] = [bpf.load(OFF_ARCH)]
    arches = set(profile.architectures)
    if arches & {"SCMP_ARCH_X86_64", "SCMP_ARCH_X32"}:
        items.append(bpf.jump(bpf.JEQ_K, AUDIT_ARCH_X86_64, "arch.x86_64", None))
    if "SCMP_ARCH_X86" in arches:
        items.append(bpf.jump(bpf.JEQ_K, AUDIT_ARCH_I386, "arch.i386", None))
    items.append(bpf.ret(BAD_ARCH))
    if arches & {"SCMP_ARCH_X86_64", "SCMP_ARCH_X32"}:
        x64 = "body.x86_64" if "SCMP_ARCH_X86_64" in arches else "badarch"
        x32 = "body.x32" if "SCMP_ARCH_X32" in arches else "badarch"
        items += [bpf.Label("arch.x86_64"), bpf.load(OFF_NR),
                  bpf.jump(bpf.JGE_K, X32_SYSCALL_BIT, x32, x64)]
    for arch in profile.architectures:
        abi = _ABIS[arch]
        if arch == "SCMP_ARCH_X86":
            items += [bpf.Label("arch.i386"), bpf.load(OFF_NR)]
        items += _body(abi, profile)
    items += [bpf.Label("badarch"), bpf.ret(BAD_ARCH)]  # BPF jumps only forward: keep it last
    prog = bpf.assemble(items)
    if len(prog) > bpf.MAX_INSNS:
        raise SeccompError(f"seccomp filter has {len(prog)} BPF instructions, "
                           f"the kernel's limit is {bpf.MAX_INSNS}")
    return CompiledFilter(tuple(prog), profile.flags)


def _body(abi: _Abi, profile: SeccompProfile) -> list[bpf.Item]:
    """Dispatch on the syscall number (already in A) and each syscall's rules.

    A syscall whose rules have no conditions jumps straight to a ``ret`` placed right after its
    chunk of comparisons (one instruction per syscall, every jump short); syscalls with argument
    conditions jump to their own rule blocks after the dispatch.
    """
    by_nr: dict[int, list[SyscallRule]] = {}
    for rule in profile.rules:
        for name in rule.names:
            nr = abi.table.get(name)
            if nr is not None:
                by_nr.setdefault(nr, []).append(rule)
    default = profile.default_action.ret()
    simple = {nr: rules[0].action.ret() for nr, rules in by_nr.items()
              if not any(r.args for r in rules)}
    dispatch = [nr for nr in by_nr if simple.get(nr) != default]
    items: list[bpf.Item] = [bpf.Label(f"body.{abi.name}")]
    items += _enosys_stub(abi, max(by_nr, default=None), profile)
    for start in range(0, max(len(dispatch), 1), _CHUNK):
        chunk = dispatch[start:start + _CHUNK]
        tag = f"{abi.name}.k{start}"
        rets: dict[int, str] = {}
        for nr in chunk:
            if nr in simple:
                target = rets.setdefault(simple[nr], f"{tag}.{simple[nr]:x}")
            else:
                target = f"{abi.name}.{nr}"
            items.append(bpf.jump(bpf.JEQ_K, nr, target, None))
        last = start + _CHUNK >= len(dispatch)
        items.append(bpf.ret(default) if last else bpf.goto(f"{abi.name}.k{start + _CHUNK}"))
        for value, label in rets.items():
            items += [bpf.Label(label), bpf.ret(value)]
        if not last:
            items.append(bpf.Label(f"{abi.name}.k{start + _CHUNK}"))
    for nr, rules in by_nr.items():
        if nr not in simple:
            items.append(bpf.Label(f"{abi.name}.{nr}"))
            items += _rules(f"{abi.name}.{nr}", rules, abi.wide, default)
    return items


def _enosys_stub(abi: _Abi, last_nr: int | None, profile: SeccompProfile) -> list[bpf.Item]:
    """runc's patchbpf: a syscall newer than every syscall the profile names gets ENOSYS, not
    the default action, so libc falls back to an older call (clone3 -> clone, ...) instead of
    failing with the profile's EPERM. Not needed when the default already lets calls through."""
    if last_nr is None or profile.default_action.name in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG"):
        return []
    known = f"{abi.name}.known"
    return [bpf.jump(bpf.JGT_K, last_nr, None, known), bpf.ret(RET_ERRNO | ENOSYS),
            bpf.Label(known)]


def _rules(tag: str, rules: list[SyscallRule], wide: bool, default: int) -> list[bpf.Item]:
    conditional = [r for r in rules if r.args]
    unconditional = [r for r in rules if not r.args][:1]
    items: list[bpf.Item] = []
    for i, rule in enumerate(conditional + unconditional):
        fail = f"{tag}.r{i + 1}"
        for j, cond in enumerate(rule.args):
            items += _condition(cond, wide, f"{tag}.r{i}.c{j + 1}", fail)
            items.append(bpf.Label(f"{tag}.r{i}.c{j + 1}"))
        items += [bpf.ret(rule.action.ret()), bpf.Label(fail)]
    items.append(bpf.ret(default))
    return items


def _condition(c: ArgCondition, wide: bool, ok: str, fail: str) -> list[bpf.Item]:
    """Code that jumps to ``ok`` when the condition holds and to ``fail`` otherwise."""
    lo_off = OFF_ARGS + 8 * c.index
    hi_off = lo_off + 4
    hi, lo = c.value >> 32, c.value & 0xFFFFFFFF
    if c.op == "SCMP_CMP_MASKED_EQ":
        dhi, dlo = c.value_two >> 32, c.value_two & 0xFFFFFFFF
        low: list[bpf.Item] = [bpf.load(lo_off), bpf.Op(bpf.ALU_AND_K, lo),
                               bpf.jump(bpf.JEQ_K, dlo, ok, fail)]
        if not wide:
            return low
        return [bpf.load(hi_off), bpf.Op(bpf.ALU_AND_K, hi),
                bpf.jump(bpf.JEQ_K, dhi, None, fail), *low]
    # LT, LE, NE are the negations of GE, GT, EQ: swap the targets.
    if c.op in _NEGATE:
        op, ok, fail = _NEGATE[c.op], fail, ok
    else:
        op = c.op
    code = {"SCMP_CMP_EQ": bpf.JEQ_K, "SCMP_CMP_GT": bpf.JGT_K, "SCMP_CMP_GE": bpf.JGE_K}[op]
    low = [bpf.load(lo_off), bpf.jump(code, lo, ok, fail)]
    if not wide:
        return low
    if op == "SCMP_CMP_EQ":
        return [bpf.load(hi_off), bpf.jump(bpf.JEQ_K, hi, None, fail), *low]
    # GT/GE: a larger high word decides; an equal one defers to the low word.
    return [bpf.load(hi_off), bpf.jump(bpf.JGT_K, hi, ok, None),
            bpf.jump(bpf.JEQ_K, hi, None, fail), *low]
