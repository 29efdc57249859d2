"""The spawner's records cross the zygote socket through one codec (runtime.launch.params):
the parsed spec, the compiled seccomp filter and an exec's preparation come back equal, and
anything else is refused."""

from __future__ import annotations

import pickle
import socket

import pytest

from runtime.launch import params, zygote
from runtime.launch.execprep import ExecPrep
from runtime.launch.prewarm import _sample
from runtime.launch.spawners import make_spawner
from runtime.monitor.launch import MonitorFds, MonitorRequest
from runtime.monitor.options import MonitorOptions
from runtime.seccomp import CompiledFilter, SeccompError, prepare_filter
from runtime.spec import parse_process, parse_spec

PROFILE = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
           "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
INDEX = {"reply": 0, "wait": None, "stdio": None}


def _init() -> params.InitParams:
    doc = _sample()
    return params.InitParams(
        id="c1", bundle="/b", spec=parse_spec(doc), exec_fifo="/s/exec.fifo",
        state={"ociVersion": "1.2.0", "id": "c1", "status": "creating", "bundle": "/b"},
        cgroups={"mounts": [["/sys/fs/cgroup/pids", "/", 1, ["pids"]]], "own": {"pids": "/"}},
        seccomp=prepare_filter(PROFILE), no_pivot=True)


def _exec() -> params.ExecParams:
    prep = ExecPrep(41, 12345, ("/sys/fs/cgroup/pids/a", "/sys/fs/cgroup/unified/a"),
                    prepare_filter(PROFILE))
    return params.ExecParams(id="c1", bundle="/s", pid=41, prepared=prep,
                             process=parse_process({"args": ["sh"], "cwd": "/",
                                                    "env": ["A=1"], "terminal": True}))


def _request(spawner: object, brief: bool = False) -> MonitorRequest:
    return MonitorRequest(MonitorOptions(container_id="c1", stdio_mode="pipes", brief=brief),
                          spawner)


@pytest.mark.parametrize("spawner", [_init(), _exec()], ids=["init", "exec"])
def test_records_round_trip_equal(spawner: params.SpawnerParams) -> None:
    request, index = params.from_wire(params.to_wire(_request(spawner), INDEX))
    assert request == _request(spawner)
    assert index == INDEX


def test_the_init_gets_the_parsed_spec_and_the_compiled_filter() -> None:
    sent = _init()
    got = params.from_wire(params.to_wire(_request(sent), INDEX))[0].spawner
    assert got.spec == parse_spec(_sample())
    assert got.spec.mounts[0].options == ("nosuid", "noexec", "nodev")  # tuples stay tuples
    assert got.spec.linux.resources == _sample()["linux"]["resources"]  # raw dicts as sent
    assert (got.seccomp.encode(), got.seccomp.flags) == (sent.seccomp.encode(),
                                                        sent.seccomp.flags)


@pytest.mark.parametrize("data", [b"", b"not a pickle", pickle.dumps(("x", INDEX)),
                                  pickle.dumps((_request({"kind": "init"}), INDEX)),
                                  pickle.dumps((_request(_init()), ["reply"]))],
                         ids=["empty", "garbage", "not-a-request", "dict-spawner", "bad-index"])
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="malformed monitor request|unknown spawner"):
        params.from_wire(data)


def test_zygote_datagram_says_its_kind_first_and_indexes_its_fds() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    z = zygote.Zygote(a, None)  # type: ignore[arg-type]  # launch needs only the socket
    r, w = socket.socketpair()
    try:
        z.launch(_request(_exec(), brief=True), MonitorFds(reply=w.fileno(), stdio=(0, 1, 2)))
        raw, fds = zygote._receive(b)
        assert raw[:1] == b"B" and not zygote._is_deferred(raw)
        request, mfds = zygote._parse(raw, fds)
        assert request == _request(_exec(), brief=True)
        assert mfds.reply == fds[0] and mfds.stdio == tuple(fds[1:4]) and mfds.wait is None
        with pytest.raises(ValueError, match="unknown request kind"):
            zygote._parse(b"X" + raw[1:], fds)
        for fd in fds:
            socket.close(fd)
    finally:
        for s in (a, b, r, w):
            s.close()


def test_make_spawner_refuses_an_unknown_record() -> None:
    with pytest.raises(ValueError, match="unknown spawner parameters dict"):
        make_spawner({"kind": "init"})  # type: ignore[arg-type]


def test_filter_from_bytes_loads_what_was_compiled() -> None:
    compiled = prepare_filter(PROFILE)
    rebuilt = CompiledFilter.from_bytes(compiled.encode(), compiled.flags)
    assert rebuilt.encode() == compiled.encode()
    with pytest.raises(SeccompError):
        CompiledFilter.from_bytes(b"", 0)
