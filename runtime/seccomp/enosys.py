"""runc's ENOSYS stub, put in front of libseccomp's program.

A syscall newer than every syscall a profile names is one the profile's authors could not have
listed: it gets ENOSYS instead of the default action (usually EPERM), so libc falls back to
the older call (clone3 -> clone, faccessat2 -> faccessat, ...) as it does on an older kernel.
Not added when the default lets calls through (ALLOW, LOG, TRACE) or already is ENOSYS.

Only the x86 family is handled: the profile keeps only the architectures this host executes.
"""

from __future__ import annotations

from runtime.linux import libc
from runtime.seccomp import bpf
from runtime.seccomp.arch import arch_token
from runtime.seccomp.profile import RET_ERRNO, SeccompProfile

ENOSYS = 38
X32_SYSCALL_BIT = 0x40000000
_PERMISSIVE = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")
# seccomp_data offsets
_OFF_NR = 0
_OFF_ARCH = 4

# One stub instruction: (code, k, jt label, jf label); labels are resolved by _resolve.
_Insn = tuple[int, int, str | None, str | None]


def enosys_stub(profile: SeccompProfile) -> list[bpf.SockFilter]:
    """The stub's instructions (empty when none is needed); it ends by falling into the
    program that follows it, which reloads what it needs."""
    action = profile.default_action
    if action.name in _PERMISSIVE or (action.name == "SCMP_ACT_ERRNO" and action.data == ENOSYS):
        return []
    last = _last_syscalls(profile)
    if not last:
        return []
    x64, x32, i386 = (last.get(a) for a in ("SCMP_ARCH_X86_64", "SCMP_ARCH_X32",
                                             "SCMP_ARCH_X86"))
    code: list[_Insn | str] = [(bpf.LD_W_ABS, _OFF_ARCH, None, None)]
    if x64 is not None or x32 is not None:
        code.append((bpf.JEQ_K, arch_token("SCMP_ARCH_X86_64"), "x86_64", None))
    if i386 is not None:
        code.append((bpf.JEQ_K, arch_token("SCMP_ARCH_X86"), "i386", None))
    code.append((bpf.JA, 0, "main", None))
    if x64 is not None or x32 is not None:
        code += ["x86_64", (bpf.LD_W_ABS, _OFF_NR, None, None),
                 (bpf.JSET_K, X32_SYSCALL_BIT, "x32" if x32 is not None else "main", None)]
        if x64 is not None:
            code.append((bpf.JGT_K, x64, "enosys", None))
        code.append((bpf.JA, 0, "main", None))
        if x32 is not None:
            code += ["x32", (bpf.JGT_K, x32, "enosys", None), (bpf.JA, 0, "main", None)]
    if i386 is not None:
        code += ["i386", (bpf.LD_W_ABS, _OFF_NR, None, None), (bpf.JGT_K, i386, "enosys", None),
                 (bpf.JA, 0, "main", None)]
    code += ["enosys", (bpf.RET_K, RET_ERRNO | ENOSYS, None, None), "main"]
    return _resolve(code)


def _last_syscalls(profile: SeccompProfile) -> dict[str, int]:
    """The largest syscall number the profile names, per architecture of the filter."""
    names = {n for rule in profile.rules for n in rule.names}
    last: dict[str, int] = {}
    for arch in profile.architectures:
        token = arch_token(arch)
        nrs = [nr for n in names
               if (nr := libc.seccomp_syscall_resolve_name(n, token)) is not None and nr >= 0]
        if nrs:
            last[arch] = max(nrs)
    return last


def _resolve(code: list[_Insn | str]) -> list[bpf.SockFilter]:
    pos: dict[str, int] = {}
    n = 0
    for item in code:
        if isinstance(item, str):
            pos[item] = n
        else:
            n += 1
    prog: list[bpf.SockFilter] = []
    for item in code:
        if isinstance(item, str):
            continue
        op, k, jt, jf = item
        here = len(prog) + 1

        def off(label: str | None, here: int = here) -> int:
            return 0 if label is None else pos[label] - here

        if op == bpf.JA:
            prog.append(bpf.SockFilter(op, 0, 0, off(jt)))
        else:
            prog.append(bpf.SockFilter(op, off(jt), off(jf), k))
    return prog
