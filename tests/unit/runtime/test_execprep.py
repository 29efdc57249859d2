"""ExecPrep crosses the zygote socket as JSON; a compiled filter survives it byte for byte."""

from __future__ import annotations

import json

import pytest

from runtime.errors import SpecError
from runtime.launch.execprep import ExecPrep
from runtime.seccomp import CompiledFilter, SeccompError, prepare_filter

PROFILE = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
           "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}


def test_round_trip_keeps_the_program_bytes_and_flags() -> None:
    compiled = prepare_filter(PROFILE)
    prep = ExecPrep(41, 12345, ("/sys/fs/cgroup/pids/a", "/sys/fs/cgroup/unified/a"), compiled)
    back = ExecPrep.from_params(json.loads(json.dumps(prep.to_params())))
    assert (back.pid, back.pid_start, back.cgroup_dirs) == (41, 12345, prep.cgroup_dirs)
    assert back.seccomp is not None
    assert (back.seccomp.encode(), back.seccomp.flags) == (compiled.encode(), compiled.flags)


def test_round_trip_without_seccomp() -> None:
    prep = ExecPrep(7, 1, ())
    assert ExecPrep.from_params(json.loads(json.dumps(prep.to_params()))) == prep


@pytest.mark.parametrize("change", [
    {"seccomp": {"bpf": "not base64!", "flags": 0}},
    {"seccomp": {"bpf": "AAAA", "flags": 0}},  # 3 bytes: not whole 8-byte instructions
    {"seccomp": {"flags": 0}},
    {"cgroup_dirs": None},
    {"pid": "x"},
])
def test_malformed_preparation_is_a_spec_error(change: dict) -> None:
    params = {**ExecPrep(7, 1, (), prepare_filter(PROFILE)).to_params(), **change}
    with pytest.raises(SpecError, match="malformed exec preparation"):
        ExecPrep.from_params(params)


def test_filter_from_bytes_loads_what_was_compiled() -> None:
    compiled = prepare_filter(PROFILE)
    rebuilt = CompiledFilter.from_bytes(compiled.encode(), compiled.flags)
    assert rebuilt.encode() == compiled.encode()
    with pytest.raises(SeccompError):
        CompiledFilter.from_bytes(b"", 0)
