"""Real client-go (kubectl) against crid's streaming server, through a fake API server proxy.

kubectl 1.30+ speaks WebSocket v5 for exec/attach and SPDY-in-WebSocket for port-forward by
default; the KUBECTL_*_WEBSOCKETS=false switches make it fall back to plain SPDY/3.1 (what the
kubelet and crictl use).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from crid.streaming.protocol import StreamingServer
from tests.integration.streaming.fake_apiserver import FakeApiServer
from tests.integration.streaming.host_backend import HostProcessBackend
from tests.integration.streaming.test_portforward import echo_server, http_server  # noqa: F401

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")


@pytest.fixture
def api(server: StreamingServer) -> Iterator[FakeApiServer]:
    api = FakeApiServer(server)
    api.start()
    yield api
    api.stop()


@pytest.fixture
def kubeconfig(api: FakeApiServer, tmp_path) -> str:  # type: ignore
    path = tmp_path / "kubeconfig"
    path.write_text(api.kubeconfig())
    return str(path)


def _upgrades(api: FakeApiServer, kind: str) -> list[str]:
    """Methods of the streaming requests kubectl made (GET = WebSocket, POST = SPDY)."""
    return [r.split()[0] for r in api.requests if r.split("?")[0].endswith("/" + kind)]


def _env(kubeconfig: str, websockets: bool) -> dict[str, str]:
    flag = "true" if websockets else "false"
    return dict(os.environ, KUBECONFIG=kubeconfig, KUBECTL_REMOTE_COMMAND_WEBSOCKETS=flag,
                KUBECTL_PORT_FORWARD_WEBSOCKETS=flag)


@pytest.mark.parametrize("websockets", [True, False], ids=["websocket", "spdy"])
def test_kubectl_exec(kubeconfig: str, api: FakeApiServer, websockets: bool) -> None:
    data = os.urandom(10 << 20)
    r = subprocess.run(["kubectl", "exec", "p1", "-i", "--", "sh", "-c",
                        "sha256sum; echo err >&2; exit 7"],
                       input=data, capture_output=True, env=_env(kubeconfig, websockets),
                       timeout=60)
    assert r.returncode == 7
    assert r.stdout == f"{hashlib.sha256(data).hexdigest()}  -\n".encode()
    assert r.stderr == b"err\ncommand terminated with exit code 7\n"
    assert _upgrades(api, "exec") == (["GET"] if websockets else ["POST"])


@pytest.mark.parametrize("websockets", [True, False], ids=["websocket", "spdy"])
def test_kubectl_exec_tty_size(kubeconfig: str, websockets: bool) -> None:
    if shutil.which("script") is None:
        pytest.skip("script(1) not installed")
    r = subprocess.run(["script", "-qec", "stty rows 33 cols 111; kubectl exec -it p1 -- "
                        "sh -c 'sleep 0.5; stty size'", "/dev/null"],
                       capture_output=True, env=_env(kubeconfig, websockets), timeout=60,
                       stdin=subprocess.DEVNULL)
    assert b"33 111" in r.stdout, r


@pytest.mark.parametrize("websockets", [True, False], ids=["websocket", "spdy"])
def test_kubectl_attach(kubeconfig: str, backend: HostProcessBackend, websockets: bool) -> None:
    backend.add_container("c", ["sh", "-c", "for i in 1 2 3; do echo line $i; done; exit 0"])
    r = subprocess.run(["kubectl", "attach", "p1", "-c", "c"], capture_output=True,
                       env=_env(kubeconfig, websockets), timeout=60)
    assert r.stdout.endswith(b"line 1\nline 2\nline 3\n"), r


@pytest.mark.parametrize("websockets", [True, False], ids=["websocket", "spdy"])
def test_kubectl_port_forward(kubeconfig: str, api: FakeApiServer,
                              http_server: int, websockets: bool) -> None:  # noqa: F811
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        local = s.getsockname()[1]
    proc = subprocess.Popen(["kubectl", "port-forward", "pod/p1", f"{local}:{http_server}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(kubeconfig, websockets))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", local), 1)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        bodies = []
        for _ in range(3):
            conn.sendall(b"GET /hello.txt HTTP/1.0\r\nHost: pod\r\n\r\n")
            conn.shutdown(socket.SHUT_WR)
            body = b""
            while chunk := conn.recv(65536):
                body += chunk
            bodies.append(body)
            conn.close()
            conn = socket.create_connection(("127.0.0.1", local), 5)
        conn.close()
        assert all(b.endswith(b"hello from the pod\n") for b in bodies), bodies
        assert _upgrades(api, "portforward") == (["GET"] if websockets else ["POST"])
    finally:
        proc.kill()
        proc.wait()
