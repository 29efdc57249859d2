"""crid's streaming CLIENT against a real Go streaming server: containerd 1.6's (the kubelet's
library), through the CRI Exec/PortForward RPCs. Checks the client on its own, independently
of crid's server."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from crid.api import api_pb2 as pb
from crid.streaming.protocol.client import CommandIO, PortForwarder, exec_spdy, exec_websocket
from crid.streaming.protocol.requests import TerminalSize
from tests.integration.streaming.test_portforward import http_server  # noqa: F401

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("containerd") is None,
                                reason="needs root and Debian's containerd")


@pytest.fixture(scope="module")
def ctd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    from tests.bench.api import BenchContext
    from tests.bench.bench_streaming import _sleeping_container
    from tests.bench.cgroups import remove_cgroup_dirs
    from tests.bench.containerd import ContainerdOptions, running_containerd
    from tests.bench.runner import _push_pause
    from tests.rig.cri_client import CriClient
    from tests.rig.registry import running_registry

    workdir = tmp_path_factory.mktemp("crt-stream-ctd")
    try:
        with running_registry() as registry:
            options = ContainerdOptions(sandbox_image=_push_pause(registry),
                                        plain_http_registries=(registry.netloc,))
            with running_containerd(workdir / "containerd", options) as containerd, \
                    CriClient(containerd.socket) as client:
                ctx = BenchContext("containerd", containerd.pid, registry, workdir / "scratch")
                Path(ctx.workdir).mkdir(parents=True, exist_ok=True)
                with _sleeping_container(client, ctx) as cid:
                    yield client, cid
    finally:
        remove_cgroup_dirs()


def _exec_url(ctd: tuple[object, str], cmd: list[str], **kw: bool) -> str:
    client, cid = ctd
    return client.runtime.Exec(pb.ExecRequest(container_id=cid, cmd=cmd, **kw)).url  # type: ignore


def test_spdy_exec_against_containerd(ctd: tuple[object, str]) -> None:
    data = os.urandom(3 << 20)
    out, err = bytearray(), bytearray()
    url = _exec_url(ctd, ["/bin/sh", "-c", "busybox sha256sum; echo e >&2; exit 3"],
                    stdin=True, stdout=True, stderr=True)
    result = asyncio.run(exec_spdy(url, CommandIO(stdin=data, stdout=out.extend,
                                                  stderr=err.extend)))
    assert (result.protocol, result.exit_code) == ("v4.channel.k8s.io", 3)
    assert bytes(out) == f"{hashlib.sha256(data).hexdigest()}  -\n".encode()
    assert bytes(err) == b"e\n"


def test_spdy_tty_resize_against_containerd(ctd: tuple[object, str]) -> None:
    async def sizes():  # type: ignore[no-untyped-def]
        yield TerminalSize(99, 21)
        await asyncio.sleep(10)

    async def line():  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.5)
        yield b"go\n"
        await asyncio.sleep(10)

    out = bytearray()
    url = _exec_url(ctd, ["/bin/sh", "-c", "read x; busybox stty size"], stdin=True, tty=True,
                    stdout=True)
    result = asyncio.run(asyncio.wait_for(exec_spdy(url, CommandIO(
        stdin=line(), stdout=out.extend, tty=True, resizes=sizes())), 20))
    assert result.exit_code == 0
    assert out.endswith(b"21 99\r\n"), bytes(out)


def test_websocket_v4_exec_against_containerd(ctd: tuple[object, str]) -> None:
    out = bytearray()
    url = _exec_url(ctd, ["/bin/sh", "-c", "echo via-ws; exit 5"], stdout=True, stderr=True)
    result = asyncio.run(exec_websocket(url, CommandIO(stdout=out.extend, stderr=out.extend),
                                        protocol="v4.channel.k8s.io"))
    assert (result.exit_code, bytes(out)) == (5, b"via-ws\n")


def test_spdy_port_forward_against_containerd(ctd: tuple[object, str],
                                              http_server: int) -> None:  # noqa: F811
    client, _ = ctd
    pods = client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items  # type: ignore
    url = client.runtime.PortForward(pb.PortForwardRequest(  # type: ignore[attr-defined]
        pod_sandbox_id=pods[0].id, port=[http_server])).url

    async def go() -> bytes:
        pf = await PortForwarder.connect(url)
        try:
            conn = await pf.open(http_server)
            await conn.write(b"GET /hello.txt HTTP/1.0\r\n\r\n")
            await conn.close_write()
            body = bytearray()
            while chunk := await conn.read():
                body += chunk
            return bytes(body)
        finally:
            await pf.close()

    assert asyncio.run(asyncio.wait_for(go(), 20)).endswith(b"hello from the pod\n")
