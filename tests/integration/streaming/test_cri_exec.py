"""Exec through a real crid: Exec RPC -> URL -> SPDY or WebSocket session -> a process in a
busybox container started by the embedded runtime."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from crid.api import api_pb2 as pb
from crid.streaming.protocol import TerminalSize
from crid.streaming.protocol.client import CommandIO, exec_spdy
from tests.integration.containers.helpers import code_of
from tests.integration.streaming.cri_rig import StreamRig, run_session

TRANSPORTS = ["spdy", "websocket"]


def _drop(_: bytes) -> None:
    pass


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("script,code", [("exit 0", 0), ("exit 1", 1), ("kill -9 $$", 137)])
def test_exit_codes(srig: StreamRig, transport: str, script: str, code: int) -> None:
    url = srig.exec_url(srig.sleeper, "/bin/sh", "-c", script)
    result = run_session(url, CommandIO(stdout=_drop, stderr=_drop), transport)
    assert result.exit_code == code
    if code:
        assert result.status is not None
        assert result.status["details"]["causes"] == [{"reason": "ExitCode",
                                                       "message": str(code)}]


def test_exec_runs_with_the_containers_process_settings(srig: StreamRig) -> None:
    out, err = bytearray(), bytearray()
    url = srig.exec_url(srig.sleeper, "/bin/sh", "-c", "echo $CRT; pwd; id -u; echo e >&2")
    result = run_session(url, CommandIO(stdout=out.extend, stderr=err.extend))
    assert (result.exit_code, bytes(out), bytes(err)) == (0, b"sw\n/tmp\n0\n", b"e\n")
    # Inside the pod's pid namespace (pid 1 is the pod's sleeping infra process).
    url = srig.exec_url(srig.sleeper, "/bin/cat", "/proc/1/cmdline")
    out.clear()
    assert run_session(url, CommandIO(stdout=out.extend, stderr=_drop)).exit_code == 0
    assert bytes(out) == b"/bin/sleep\x00infinity\x00"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stdin_10mib_through_sha256sum(srig: StreamRig, transport: str) -> None:
    data = os.urandom(10 << 20)
    out = bytearray()
    url = srig.exec_url(srig.sleeper, "/bin/busybox", "sha256sum", stdin=True)
    result = run_session(url, CommandIO(stdin=data, stdout=out.extend, stderr=out.extend),
                         transport)
    assert (result.exit_code, bytes(out)) == (0, f"{hashlib.sha256(data).hexdigest()}  -\n"
                                              .encode())


def test_stdout_bytes_exact(srig: StreamRig) -> None:
    out = bytearray()
    url = srig.exec_url(srig.sleeper, "/bin/busybox", "head", "-c", str(8 << 20), "/dev/urandom")
    # Compare with the digest computed inside: the exact bytes made it.
    res = run_session(url, CommandIO(stdout=out.extend, stderr=_drop))
    assert (res.exit_code, len(out)) == (0, 8 << 20)
    url = srig.exec_url(srig.sleeper, "/bin/busybox", "sha256sum", stdin=True)
    digest = bytearray()
    run_session(url, CommandIO(stdin=bytes(out), stdout=digest.extend, stderr=_drop))
    assert bytes(digest).split()[0].decode() == hashlib.sha256(out).hexdigest()


async def _sizes(*sizes: TerminalSize) -> AsyncIterator[TerminalSize]:
    for size in sizes:
        yield size


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tty_sees_the_resize(srig: StreamRig, transport: str) -> None:
    out = bytearray()
    url = srig.exec_url(srig.sleeper, "/bin/sh", "-c", "sleep 0.5; busybox stty size; busybox tty",
                        tty=True, stderr=False)
    result = run_session(url, CommandIO(stdout=out.extend, tty=True,
                                        resizes=_sizes(TerminalSize(width=123, height=45))),
                         transport)
    lines = bytes(out).replace(b"\r", b"").split(b"\n")
    assert result.exit_code == 0
    assert lines[0] == b"45 123", out
    assert lines[1].startswith(b"/dev/pts/"), out


def test_tty_stdin_and_exit_code(srig: StreamRig) -> None:
    out = bytearray()
    url = srig.exec_url(srig.sleeper, "/bin/sh", "-c", "read line; echo got:$line; exit 5",
                        tty=True, stdin=True, stderr=False)
    result = run_session(url, CommandIO(stdin=b"hello\n", stdout=out.extend, tty=True))
    assert result.exit_code == 5
    assert b"got:hello" in bytes(out)


def test_tty_stdin_eof_ends_cat(srig: StreamRig) -> None:
    out = bytearray()
    url = srig.exec_url(srig.sleeper, "/bin/cat", tty=True, stdin=True, stderr=False)
    result = run_session(url, CommandIO(stdin=b"abc\n", stdout=out.extend, tty=True), timeout=20)
    assert result.exit_code == 0
    assert bytes(out).count(b"abc") == 2  # the tty's echo and cat's copy


def test_process_killed_when_client_goes_away(srig: StreamRig) -> None:
    marker = f"{time.monotonic_ns() % 100000 + 1000}"
    url = srig.exec_url(srig.sleeper, "/bin/sleep", marker)

    async def go_away() -> None:
        task = asyncio.ensure_future(exec_spdy(url, CommandIO(stdout=_drop, stderr=_drop)))
        await asyncio.sleep(1.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    asyncio.run(go_away())

    def running() -> bool:
        ps = srig.exec_sync(srig.sleeper, "/bin/ps", "-o", "args").stdout.decode()
        return f"sleep {marker}" in ps
    deadline = time.monotonic() + 10
    while running():
        assert time.monotonic() < deadline, "the exec'd process outlived its session"
        time.sleep(0.1)


def test_exec_rpc_validation(srig: StreamRig) -> None:
    rt, cid = srig.rt, srig.sleeper

    def call(**kw: object) -> grpc.StatusCode:
        return code_of(lambda: rt.Exec(pb.ExecRequest(**kw)))
    assert call(container_id="0" * 64, cmd=["true"], stdout=True) == grpc.StatusCode.NOT_FOUND
    assert call(container_id="", cmd=["true"], stdout=True) == grpc.StatusCode.INVALID_ARGUMENT
    assert call(container_id=cid, cmd=[], stdout=True) == grpc.StatusCode.INVALID_ARGUMENT
    assert call(container_id=cid, cmd=["true"]) == grpc.StatusCode.INVALID_ARGUMENT
    assert call(container_id=cid, cmd=["true"], tty=True, stdout=True, stderr=True) == \
        grpc.StatusCode.INVALID_ARGUMENT
    created = srig.run("/bin/true", start=False)
    assert call(container_id=created, cmd=["true"], stdout=True) == \
        grpc.StatusCode.FAILED_PRECONDITION
    url = srig.exec_url(cid[:12], "/bin/true")  # a unique prefix is enough, as for every RPC
    assert run_session(url, CommandIO(stdout=_drop, stderr=_drop)).exit_code == 0


def test_url_is_single_use(srig: StreamRig) -> None:
    from crid.streaming.protocol.client import UpgradeRefused

    url = srig.exec_url(srig.sleeper, "/bin/true")
    assert run_session(url, CommandIO(stdout=_drop, stderr=_drop)).exit_code == 0
    with pytest.raises(UpgradeRefused) as e:
        run_session(url, CommandIO(stdout=_drop, stderr=_drop))
    assert e.value.status == 404


def test_no_exec_leftovers(srig: StreamRig) -> None:
    """Runs last in this module: every exec above released its exit file, console socket
    and processes."""
    state_dir = srig.daemon.run_root / "runtime" / srig.sleeper

    def leftovers() -> list[str]:
        names = [p.name for p in state_dir.iterdir() if p.name.startswith("exec-")]
        console = srig.daemon.run_root / "console"
        return names + ([p.name for p in console.iterdir()] if console.is_dir() else [])
    deadline = time.monotonic() + 5
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers() == []
    # (crid-init: the container test_exec_rpc_validation created and never started, in the
    # same pod's pid namespace)
    ps = [line for line in srig.exec_sync(srig.sleeper, "/bin/ps", "-o", "args")
          .stdout.decode().splitlines() if "{crid-init}" not in line]
    assert sorted(ps) == sorted(["COMMAND", "/bin/sleep infinity", "/bin/sleep 3600",
                                 "/bin/ps -o args"]), ps
