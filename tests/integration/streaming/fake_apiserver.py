"""Just enough of a Kubernetes API server for kubectl exec/attach/port-forward (tests only).

kubectl talks to the API server, which proxies the upgraded connection to the runtime's
streaming URL. This fake answers `GET pod`, turns exec/attach/portforward into a token via
the StreamingServer (as the kubelet's Exec/Attach/PortForward CRI calls would), rewrites the
request line to the token URL, and splices bytes both ways. So real client-go code (SPDY and
WebSocket) drives crid's streaming server.
"""

from __future__ import annotations

import asyncio
import json
import threading
from urllib.parse import parse_qs, urlsplit

from crid.streaming.protocol import AttachRequest, ExecRequest, PortForwardRequest, StreamingServer


def _pod(ns: str, name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": "0000"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Running",
                       "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0,
                                              "image": "busybox", "imageID": "",
                                              "state": {"running": {}}}]}}


_SUB = {"namespaced": True, "singularName": "", "verbs": ["create", "get"]}
DISCOVERY: dict[str, dict[str, object]] = {
    "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "platform": "linux/amd64"},
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
         "verbs": ["get", "list"], "shortNames": ["po"]},
        {"name": "pods/exec", "kind": "PodExecOptions", **_SUB},
        {"name": "pods/attach", "kind": "PodAttachOptions", **_SUB},
        {"name": "pods/portforward", "kind": "PodPortForwardOptions", **_SUB}]},
}


class FakeApiServer:
    def __init__(self, streaming: StreamingServer) -> None:
        self.streaming = streaming
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.requests: list[str] = []
        self._handlers: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.thread.start()
        srv = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self.loop).result(10)
        self._server = srv
        self.port = srv.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            # A handler left pending when the loop stops is destroyed mid-await later, at
            # garbage collection, where its GeneratorExit is an unraisable-exception warning.
            for task in self._handlers:
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def kubeconfig(self) -> str:
        return (f"apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n"
                f"    server: http://127.0.0.1:{self.port}\ncontexts:\n- name: fake\n"
                f"  context:\n    cluster: fake\n    user: fake\n    namespace: default\n"
                f"current-context: fake\nusers:\n- name: fake\n  user: {{}}\n")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                self.requests.append(f"{method} {target}")
                parts = urlsplit(target)
                segs = parts.path.strip("/").split("/")
                if len(segs) == 7 and segs[6] in ("exec", "attach", "portforward"):
                    await self._proxy(segs[6], parse_qs(parts.query), head, reader, writer)
                    return
                if parts.path.rstrip("/") in DISCOVERY:
                    self._reply(writer, 200, DISCOVERY[parts.path.rstrip("/")])
                elif len(segs) == 6 and segs[:2] == ["api", "v1"] and segs[4] == "pods":
                    self._reply(writer, 200, _pod(segs[3], segs[5]))
                else:
                    self._reply(writer, 404, {"kind": "Status", "apiVersion": "v1",
                                              "status": "Failure", "reason": "NotFound",
                                              "code": 404, "metadata": {}})
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @staticmethod
    def _reply(writer: asyncio.StreamWriter, code: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        writer.write(f"HTTP/1.1 {code} X\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n".encode() + data)

    async def _proxy(self, kind: str, q: dict[str, list[str]], head: bytes,
                     reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        flag = lambda k: q.get(k, ["false"])[0] in ("true", "1")  # noqa: E731
        if kind == "exec":
            url = self.streaming.request_exec(ExecRequest(
                "c", tuple(q["command"]), flag("tty"), flag("stdin"), flag("stdout"),
                flag("stderr")))
        elif kind == "attach":
            url = self.streaming.request_attach(AttachRequest(
                "c", flag("tty"), flag("stdin"), flag("stdout"), flag("stderr")))
        else:
            url = self.streaming.request_port_forward(PortForwardRequest("pod1", ()))
        path = urlsplit(url).path
        lines = head.split(b"\r\n")
        method, _, version = lines[0].split(b" ", 2)
        lines[0] = b" ".join([method, path.encode(), version])
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.streaming.port)
        up_writer.write(b"\r\n".join(lines))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                if dst.can_write_eof():
                    dst.write_eof()
            except (ConnectionError, OSError):
                pass

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.close()
