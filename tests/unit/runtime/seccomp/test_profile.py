"""validate_seccomp names the bad field and refuses what it cannot honour."""

from __future__ import annotations

import pytest

from runtime.errors import SpecError
from runtime.seccomp import Action, ArgCondition, validate_seccomp
from runtime.seccomp.profile import FLAGS


def _err(d: object) -> str:
    with pytest.raises(SpecError) as e:
        validate_seccomp(d)
    return str(e.value)


@pytest.mark.parametrize(("profile", "message"), [
    ([], "linux.seccomp: must be an object, not list"),
    ({}, "linux.seccomp.defaultAction: required"),
    ({"defaultAction": "SCMP_ACT_NOPE"}, "linux.seccomp.defaultAction: unknown action"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1},
     "linux.seccomp.defaultErrnoRet: only valid with SCMP_ACT_ERRNO"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1},
     "linux.seccomp.defaultErrnoRet: must be an integer from 0 to 4095"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"},
     "linux.seccomp.listenerPath: seccomp user notification"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]},
     "linux.seccomp.architectures[0]: unknown architecture"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]},
     "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_NEW_LISTENER is not supported"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["FOO"]}, "linux.seccomp.flags[0]: unknown"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}},
     "linux.seccomp.syscalls: must be an array"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]},
     "linux.seccomp.syscalls[0].names: must name at least one syscall"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read; rm"],
                                                       "action": "SCMP_ACT_ERRNO"}]},
     "linux.seccomp.syscalls[0].names[0]: not a syscall name"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"]}]},
     "linux.seccomp.syscalls[0].action: required"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].index: must be an integer from 0 to 5"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 2**64, "op": "SCMP_CMP_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].value: must be an integer"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]},
     "linux.seccomp.syscalls[0].args[0].op: unknown operator"),
])
def test_invalid_profiles_name_the_field(profile: object, message: str) -> None:
    assert _err(profile).startswith(message)


def test_valid_profile_is_typed() -> None:
    p = validate_seccomp({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "unknownExtension": True,
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 1, "value": 3, "op": "SCMP_CMP_GE"}]}],
    })
    assert p.default_action == Action("SCMP_ACT_ERRNO", 38)
    assert p.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86")
    assert p.flags == FLAGS["SECCOMP_FILTER_FLAG_LOG"] | FLAGS["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    assert p.rules[0].args == (ArgCondition(1, 3, "SCMP_CMP_GE", 0),)


def test_errno_action_defaults_to_eperm() -> None:
    p = validate_seccomp({"defaultAction": "SCMP_ACT_ERRNO"})
    assert p.default_action == Action("SCMP_ACT_ERRNO", 1)
