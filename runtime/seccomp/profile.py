"""Typed, validated form of the OCI ``linux.seccomp`` object.

``validate_seccomp`` is a pure function: it checks every field and raises ``SpecError`` naming
the first bad one (``linux.seccomp.syscalls[3].args[0].op: ...``). It never touches the kernel.
Semantics follow runc + libseccomp where the spec is silent (see the notes on each type).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from runtime.errors import SpecError
from runtime.records import dataclass

FIELD = "linux.seccomp"
EPERM = 1
MAX_ERRNO = 4095
U64_MAX = (1 << 64) - 1

# SECCOMP_RET_* values (include/uapi/linux/seccomp.h).
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

_ACTIONS = {
    "SCMP_ACT_KILL": RET_KILL_THREAD,  # libseccomp: KILL is KILL_THREAD
    "SCMP_ACT_KILL_THREAD": RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": RET_KILL_PROCESS,
    "SCMP_ACT_TRAP": RET_TRAP,
    "SCMP_ACT_ERRNO": RET_ERRNO,
    "SCMP_ACT_TRACE": RET_TRACE,
    "SCMP_ACT_LOG": RET_LOG,
    "SCMP_ACT_ALLOW": RET_ALLOW,
}
_REFUSED_ACTIONS = {"SCMP_ACT_NOTIFY": "seccomp user notification (a listener) is not supported"}
_WITH_DATA = {"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"}

OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
       "SCMP_CMP_MASKED_EQ")

FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}
_REFUSED_FLAGS = {"SECCOMP_FILTER_FLAG_NEW_LISTENER", "SECCOMP_FILTER_FLAG_TSYNC_ESRCH",
                  "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}

# Architectures this x86_64 host can execute; every other libseccomp name is accepted and ignored,
# since the kernel never reports those audit arches here (runc's profiles list them all).
SUPPORTED_ARCHES = ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
_FOREIGN_ARCHES = {
    "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
}
# Patterns stay strings, compiled by re on first use (and cached there): compiling
# them at import would cost every CLI call.
_SYSCALL_NAME = r"^[a-z_][a-z0-9_]{0,63}$"


@dataclass(frozen=True)
class Action:
    """A seccomp action; ``data`` is the errno (ERRNO) or the tracer's message (TRACE)."""

    name: str
    data: int = 0

    @functools.cached_property
    def value(self) -> int:
        """The SECCOMP_RET_* value a BPF program returns for this action."""
        return _ACTIONS[self.name] | (self.data & 0xFFFF)

    def ret(self) -> int:
        return self.value


@dataclass(frozen=True)
class ArgCondition:
    """Compare syscall argument ``index`` (unsigned 64-bit) with ``value``.

    For SCMP_CMP_MASKED_EQ, as in libseccomp, ``value`` is the mask and ``value_two`` the datum:
    the condition holds when ``arg & value == value_two``.
    """

    index: int
    value: int
    op: str
    value_two: int = 0


@dataclass(frozen=True)
class SyscallRule:
    """One entry of ``linux.seccomp.syscalls``: every condition in ``args`` must hold (AND).

    runc turns a rule naming the same argument index twice into one rule per condition (OR);
    ``validate_seccomp`` does that split already, so ``args`` never repeats an index.
    """

    names: tuple[str, ...]
    action: Action
    args: tuple[ArgCondition, ...] = ()


@dataclass(frozen=True)
class SeccompProfile:
    default_action: Action
    architectures: tuple[str, ...]  # supported arches only, the native x86_64 always included
    flags: int
    rules: tuple[SyscallRule, ...]


def validate_seccomp(seccomp: Any, field: str = FIELD) -> SeccompProfile:
    """Check an OCI ``linux.seccomp`` object and return its typed form.

    Unknown properties are ignored, as config.md requires of readers.

    Raises:
        SpecError: naming the offending field, for a wrong type, an unknown action, operator,
            architecture or flag, an out-of-range number, or a feature refused on purpose
            (SCMP_ACT_NOTIFY, listenerPath, SECCOMP_FILTER_FLAG_NEW_LISTENER).
    """
    d = _obj(seccomp, field)
    if d.get("listenerPath"):
        raise SpecError(f"{field}.listenerPath",
                        "seccomp user notification (a listener) is not supported")
    if "defaultAction" not in d:
        raise SpecError(f"{field}.defaultAction", "required")
    default = _action(d["defaultAction"], d.get("defaultErrnoRet"), f"{field}.defaultAction",
                      f"{field}.defaultErrnoRet")
    return SeccompProfile(
        default_action=default,
        architectures=_arches(d.get("architectures"), f"{field}.architectures"),
        flags=_flags(d.get("flags"), f"{field}.flags"),
        rules=tuple(r for i, s in enumerate(_list(d.get("syscalls"), f"{field}.syscalls"))
                    for r in _rules(s, f"{field}.syscalls[{i}]")),
    )


def _obj(v: Any, field: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise SpecError(field, f"must be an object, not {type(v).__name__}")
    return v


def _list(v: Any, field: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise SpecError(field, f"must be an array, not {type(v).__name__}")
    return v


def _uint(v: Any, field: str, maximum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= maximum:
        raise SpecError(field, f"must be an integer from 0 to {maximum}, not {v!r}")
    return v


def _action(name: Any, errno_ret: Any, field: str, errno_field: str) -> Action:
    if name in _REFUSED_ACTIONS:
        raise SpecError(field, f"{name}: {_REFUSED_ACTIONS[name]}")
    if name not in _ACTIONS:
        raise SpecError(field, f"unknown action {name!r}; expected one of {sorted(_ACTIONS)}")
    if errno_ret is None:
        return Action(name, EPERM if name in _WITH_DATA else 0)
    if name not in _WITH_DATA:
        raise SpecError(errno_field, f"only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, "
                                     f"not {name}")
    return Action(name, _uint(errno_ret, errno_field, MAX_ERRNO))


def _arches(v: Any, field: str) -> tuple[str, ...]:
    arches = ["SCMP_ARCH_X86_64"]  # libseccomp's seccomp_init always adds the native arch
    for i, a in enumerate(_list(v, field)):
        if a in SUPPORTED_ARCHES:
            if a not in arches:
                arches.append(a)
        elif a not in _FOREIGN_ARCHES:
            raise SpecError(f"{field}[{i}]", f"unknown architecture {a!r}")
    return tuple(arches)


def _flags(v: Any, field: str) -> int:
    bits = 0
    for i, f in enumerate(_list(v, field)):
        if f in _REFUSED_FLAGS:
            raise SpecError(f"{field}[{i}]", f"{f} is not supported: it only applies to a "
                                             "seccomp user-notification listener")
        if f not in FLAGS:
            raise SpecError(f"{field}[{i}]", f"unknown flag {f!r}; expected one of {sorted(FLAGS)}")
        bits |= FLAGS[f]
    return bits


def _rules(v: Any, field: str) -> list[SyscallRule]:
    d = _obj(v, field)
    names = _list(d.get("names"), f"{field}.names")
    if not names:
        raise SpecError(f"{field}.names", "must name at least one syscall")
    for i, n in enumerate(names):
        if not isinstance(n, str) or not re.match(_SYSCALL_NAME, n):
            raise SpecError(f"{field}.names[{i}]", f"not a syscall name: {n!r}")
    if "action" not in d:
        raise SpecError(f"{field}.action", "required")
    action = _action(d["action"], d.get("errnoRet"), f"{field}.action", f"{field}.errnoRet")
    conds = [_condition(a, f"{field}.args[{i}]")
             for i, a in enumerate(_list(d.get("args"), f"{field}.args"))]
    indexes = [c.index for c in conds]
    if len(set(indexes)) == len(indexes):
        return [SyscallRule(tuple(names), action, tuple(conds))]
    # runc: conditions repeating an argument index become separate rules (OR'ed).
    return [SyscallRule(tuple(names), action, (c,)) for c in conds]


def _condition(v: Any, field: str) -> ArgCondition:
    d = _obj(v, field)
    if d.get("op") not in OPS:
        raise SpecError(f"{field}.op", f"unknown operator {d.get('op')!r}; expected one of {OPS}")
    for key in ("index", "value"):
        if key not in d:
            raise SpecError(f"{field}.{key}", "required")
    return ArgCondition(index=_uint(d["index"], f"{field}.index", 5),
                        value=_uint(d["value"], f"{field}.value", U64_MAX),
                        op=d["op"],
                        value_two=_uint(d.get("valueTwo", 0), f"{field}.valueTwo", U64_MAX))
