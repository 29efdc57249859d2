"""libseccomp's BPF (with runc's ENOSYS stub in front), run through a test interpreter, gives
the action the profile asks for: the interpreter checks what libseccomp produces."""

from __future__ import annotations

import operator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.linux import libc
from runtime.seccomp import compile_filter, validate_seccomp
from runtime.seccomp.profile import (
    RET_ALLOW,
    RET_ERRNO,
    RET_KILL_PROCESS,
    RET_KILL_THREAD,
    RET_LOG,
    RET_TRACE,
    RET_TRAP,
)
from tests.unit.runtime.seccomp.bpf_interp import run, seccomp_data

X64, I32 = 0xC000003E, 0x40000003  # AUDIT_ARCH_X86_64, AUDIT_ARCH_I386
_X32_TOKEN = 0x4000003E  # libseccomp's x32: x86_64's audit arch, numbers with bit 30 set


class _Table:
    """Syscall numbers of one architecture, as libseccomp (the compiler's source) has them."""

    def __init__(self, token: int) -> None:
        self.token = token

    def __getitem__(self, name: str) -> int:
        nr = libc.seccomp_syscall_resolve_name(name, self.token)
        assert nr is not None and nr >= 0, name
        return nr

    def __contains__(self, name: str) -> bool:
        nr = libc.seccomp_syscall_resolve_name(name, self.token)
        return nr is not None and nr >= 0

    def items(self) -> list[tuple[str, int]]:
        base = 0x40000000 if self.token == _X32_TOKEN else 0
        found = ((libc.seccomp_syscall_resolve_num(base + n, self.token), base + n)
                 for n in range(1024))
        return [(name, nr) for name, nr in found if name is not None]


X86_64, I386, X32 = _Table(X64), _Table(I32), _Table(_X32_TOKEN)
ALL_ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]

PROFILE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ALL_ARCHES,
    "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}]},
        {"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["kexec_load"], "action": "SCMP_ACT_KILL"},
        {"names": ["acct"], "action": "SCMP_ACT_TRAP"},
        {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
        {"names": ["sync"], "action": "SCMP_ACT_LOG"},
        # clone without CLONE_NEWUSER allowed; with it: EPERM (a MASKED_EQ rule).
        {"names": ["unshare"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 0x10000000, "valueTwo": 0x10000000,
                   "op": "SCMP_CMP_MASKED_EQ"}]},
        # Two conditions on the same index: runc makes them OR'ed rules.
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]},
        # Conditions on different indexes: AND.
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
        {"names": ["no_such_syscall_anywhere"], "action": "SCMP_ACT_ERRNO"},
    ],
}

CASES = [
    # (arch, nr, args, expected return)
    (X64, X86_64["mkdir"], (), RET_ERRNO | 1),
    (X64, X86_64["mkdirat"], (), RET_ERRNO | 1),
    (X64, X86_64["getpid"], (), RET_ERRNO | 38),
    (X64, X86_64["uname"], (), RET_ALLOW),
    (X64, X86_64["personality"], (0xFFFFFFFF,), RET_ERRNO | 1),
    (X64, X86_64["personality"], (0,), RET_ALLOW),
    (X64, X86_64["personality"], (0x1_FFFFFFFF,), RET_ALLOW),  # high word differs
    (X64, X86_64["reboot"], (), RET_KILL_PROCESS),
    (X64, X86_64["kexec_load"], (), RET_KILL_THREAD),
    (X64, X86_64["acct"], (), RET_TRAP),
    (X64, X86_64["ptrace"], (), RET_TRACE | 7),
    (X64, X86_64["sync"], (), RET_LOG),
    (X64, X86_64["unshare"], (0x10020000,), RET_ERRNO | 1),
    (X64, X86_64["unshare"], (0x00020000,), RET_ALLOW),
    (X64, X86_64["socket"], (16,), RET_ERRNO | 1),
    (X64, X86_64["socket"], (40,), RET_ERRNO | 1),
    (X64, X86_64["socket"], (2,), RET_ALLOW),
    (X64, X86_64["kill"], (1, 9), RET_ERRNO | 1),
    (X64, X86_64["kill"], (1, 15), RET_ALLOW),
    (X64, X86_64["kill"], (2, 9), RET_ALLOW),
    (I32, I386["mkdir"], (), RET_ERRNO | 1),
    (I32, I386["getpid"], (), RET_ERRNO | 38),
    (I32, I386["personality"], (0xFFFFFFFF,), RET_ERRNO | 1),
    (I32, I386["uname"], (), RET_ALLOW),
    (X64, X32["mkdir"], (), RET_ERRNO | 1),
    (X64, X32["getpid"], (), RET_ERRNO | 38),
    (X64, X32["uname"], (), RET_ALLOW),
    (0xC00000B7, 34, (), RET_KILL_THREAD),  # aarch64: libseccomp's bad-arch action
]


@pytest.mark.parametrize(("arch", "nr", "args", "expected"), CASES)
def test_profile_actions(arch: int, nr: int, args: tuple[int, ...], expected: int) -> None:
    prog = compile_filter(validate_seccomp(PROFILE)).program
    assert run(prog, seccomp_data(nr, arch, args)) == expected


def test_native_arch_only_rejects_i386_and_x32() -> None:
    prog = compile_filter(validate_seccomp({"defaultAction": "SCMP_ACT_ALLOW"})).program
    assert run(prog, seccomp_data(X86_64["uname"], X64)) == RET_ALLOW
    assert run(prog, seccomp_data(I386["uname"], I32)) == RET_KILL_THREAD
    assert run(prog, seccomp_data(X32["uname"], X64)) == RET_KILL_THREAD


def test_x32_only_profile_rejects_native_x86_64_calls_but_native_is_implicit() -> None:
    # libseccomp always includes the native arch: x86_64 calls are filtered, not killed.
    p = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X32"],
         "syscalls": [{"names": ["read", "close"], "action": "SCMP_ACT_ALLOW"}]}
    prog = compile_filter(validate_seccomp(p)).program
    assert run(prog, seccomp_data(X86_64["read"], X64)) == RET_ALLOW
    assert run(prog, seccomp_data(X32["read"], X64)) == RET_ALLOW
    assert run(prog, seccomp_data(X32["write"], X64)) == RET_ERRNO | 1


def test_allow_list_of_every_syscall_needs_long_jumps_and_still_works() -> None:
    names = sorted(name for name, _ in X86_64.items())
    p = {"defaultAction": "SCMP_ACT_KILL_PROCESS", "architectures": ALL_ARCHES,
         "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"},
                      {"names": ["write"], "action": "SCMP_ACT_ALLOW",
                       "args": [{"index": 0, "value": 99, "op": "SCMP_CMP_EQ"}]}]}
    prog = compile_filter(validate_seccomp(p)).program
    for name, nr in X86_64.items():
        assert run(prog, seccomp_data(nr, X64)) == RET_ALLOW, name
    for name, nr in I386.items():
        expected = RET_ALLOW if name in X86_64 else RET_KILL_PROCESS
        if name == "ipc" or name == "socketcall":  # multiplexers: libseccomp filters their calls
            continue
        assert run(prog, seccomp_data(nr, I32)) == expected, name
    assert run(prog, seccomp_data(9999, X64)) == RET_ERRNO | 38  # newer than the profile


def test_syscalls_newer_than_the_profile_get_enosys_unless_default_allows() -> None:
    # runc's patchbpf: libc falls back from clone3 to clone on ENOSYS, not on EPERM.
    deny = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "clone"], "action": "SCMP_ACT_ALLOW"}]}
    prog = compile_filter(validate_seccomp(deny)).program
    assert run(prog, seccomp_data(X86_64["clone3"], X64)) == RET_ERRNO | 38
    assert run(prog, seccomp_data(X86_64["write"], X64)) == RET_ERRNO | 1  # older: default
    assert run(prog, seccomp_data(X86_64["clone"], X64)) == RET_ALLOW
    allow = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO"}]}
    prog = compile_filter(validate_seccomp(allow)).program
    assert run(prog, seccomp_data(X86_64["clone3"], X64)) == RET_ALLOW


def test_unconditional_rule_overrides_conditional_ones_as_in_libseccomp() -> None:
    p = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["chmod"], "action": "SCMP_ACT_LOG",
         "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}]}
    prog = compile_filter(validate_seccomp(p)).program
    assert run(prog, seccomp_data(X86_64["chmod"], X64, (0, 0o777))) == RET_ERRNO | 5
    assert run(prog, seccomp_data(X86_64["chmod"], X64, (0, 0o755))) == RET_ERRNO | 5


def test_conditional_rules_of_one_syscall_are_all_checked() -> None:
    p = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["chmod"], "action": "SCMP_ACT_LOG",
         "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
         "args": [{"index": 1, "value": 0o700, "op": "SCMP_CMP_EQ"}]}]}
    prog = compile_filter(validate_seccomp(p)).program
    assert run(prog, seccomp_data(X86_64["chmod"], X64, (0, 0o777))) == RET_LOG
    assert run(prog, seccomp_data(X86_64["chmod"], X64, (0, 0o700))) == RET_ERRNO | 5
    assert run(prog, seccomp_data(X86_64["chmod"], X64, (0, 0o755))) == RET_ALLOW


def test_rule_with_the_default_action_and_unknown_names_are_skipped() -> None:
    p = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["not_a_syscall", "write"], "action": "SCMP_ACT_ALLOW"}]}
    prog = compile_filter(validate_seccomp(p)).program
    assert run(prog, seccomp_data(X86_64["read"], X64)) == RET_ERRNO | 1
    assert run(prog, seccomp_data(X86_64["write"], X64)) == RET_ALLOW


def test_default_errno_enosys_needs_no_stub() -> None:
    p = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
    prog = compile_filter(validate_seccomp(p)).program
    assert run(prog, seccomp_data(X86_64["clone3"], X64)) == RET_ERRNO | 38
    assert run(prog, seccomp_data(X86_64["write"], X64)) == RET_ERRNO | 38


_PY_OPS = {"SCMP_CMP_EQ": operator.eq, "SCMP_CMP_NE": operator.ne, "SCMP_CMP_LT": operator.lt,
           "SCMP_CMP_LE": operator.le, "SCMP_CMP_GT": operator.gt, "SCMP_CMP_GE": operator.ge}
_U64 = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from(
    [0, 1, 0xFFFFFFFF, 0x1_0000_0000, 0x1_0000_0001, 2**63, 2**64 - 1]))


@given(op=st.sampled_from(sorted(_PY_OPS)), value=_U64, arg=_U64, index=st.integers(0, 5))
def test_64bit_comparisons_match_unsigned_semantics(op: str, value: int, arg: int,
                                                    index: int) -> None:
    p = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": index, "value": value, "op": op}]}]}
    prog = compile_filter(validate_seccomp(p)).program
    args = tuple(arg if i == index else 0 for i in range(6))
    expected = RET_ERRNO | 1 if _PY_OPS[op](arg, value) else RET_ALLOW
    assert run(prog, seccomp_data(X86_64["read"], X64, args)) == expected


@given(mask=_U64, datum=_U64, arg=_U64)
def test_masked_eq_matches_semantics(mask: int, datum: int, arg: int) -> None:
    p = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 2, "value": mask, "valueTwo": datum, "op": "SCMP_CMP_MASKED_EQ"}]}]}
    prog = compile_filter(validate_seccomp(p)).program
    # libseccomp (so runc and crun) compares with the datum's masked bits only.
    expected = RET_ERRNO | 1 if arg & mask == datum & mask else RET_ALLOW
    assert run(prog, seccomp_data(X86_64["read"], X64, (0, 0, arg))) == expected


@given(op=st.sampled_from(sorted(_PY_OPS)), value=st.integers(0, 2**32 - 1),
       arg=st.integers(0, 2**32 - 1))
def test_i386_compares_the_32bit_argument(op: str, value: int, arg: int) -> None:
    p = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": value, "op": op}]}]}
    prog = compile_filter(validate_seccomp(p)).program
    expected = RET_ERRNO | 1 if _PY_OPS[op](arg, value) else RET_ALLOW
    assert run(prog, seccomp_data(I386["read"], I32, (arg,))) == expected
