"""The Exec/Attach/PortForward RPC converters over fake targets and a real (unstarted)
streaming server: what is refused with which error, and what is stored under the token."""

from __future__ import annotations

import pytest

from crid.api import api_pb2 as pb
from crid.errors import FailedPrecondition, InvalidArgument, NotFound
from crid.server.streaming_rpc import StreamingDeps, attach_rpc, exec_rpc, port_forward_rpc
from crid.streaming.protocol import (
    AttachRequest,
    ExecRequest,
    PortForwardRequest,
    RequestError,
    StreamingOptions,
    StreamingServer,
)

FULL = "c" * 64
POD = "p" * 64


class FakeTargets:
    def running_id(self, container_id: str, what: str) -> str:
        if FULL.startswith(container_id):
            return FULL
        if container_id == "exited":
            raise FailedPrecondition(f"cannot {what} container exited: it is exited")
        raise NotFound(f"container {container_id!r} does not exist")

    def ready_pod_id(self, pod_id: str) -> str:
        if POD.startswith(pod_id):
            return POD
        if pod_id == "stopped":
            raise FailedPrecondition("pod stopped is not ready")
        raise NotFound(f"pod {pod_id!r} does not exist")


@pytest.fixture
def deps() -> StreamingDeps:
    return StreamingDeps(StreamingServer(StreamingOptions(), backend=None),  # type: ignore
                         FakeTargets())


def stored(deps: StreamingDeps, url: str) -> object:
    server = deps.server
    assert isinstance(server, StreamingServer)
    kind, token = url.rsplit("/", 2)[-2:]
    return server.tokens.consume(kind, token)


def test_exec_stores_the_full_id_and_stdio(deps: StreamingDeps) -> None:
    url = exec_rpc(deps, pb.ExecRequest(container_id="ccc", cmd=["sh", "-c", "x"], tty=True,
                                        stdin=True, stdout=True)).url
    assert url.startswith("http://127.0.0.1:0/exec/")
    assert stored(deps, url) == ExecRequest(FULL, ("sh", "-c", "x"), True, True, True, False)


@pytest.mark.parametrize("req,error", [
    (pb.ExecRequest(cmd=["true"], stdout=True), InvalidArgument),
    (pb.ExecRequest(container_id=FULL, stdout=True), InvalidArgument),
    (pb.ExecRequest(container_id=FULL, cmd=["true"]), InvalidArgument),
    (pb.ExecRequest(container_id=FULL, cmd=["true"], tty=True, stdout=True, stderr=True),
     InvalidArgument),
    (pb.ExecRequest(container_id="nope", cmd=["true"], stdout=True), NotFound),
    (pb.ExecRequest(container_id="exited", cmd=["true"], stdout=True), FailedPrecondition),
])
def test_exec_refusals(deps: StreamingDeps, req: pb.ExecRequest, error: type) -> None:
    with pytest.raises(error):
        exec_rpc(deps, req)


def test_attach(deps: StreamingDeps) -> None:
    url = attach_rpc(deps, pb.AttachRequest(container_id=FULL, stdin=True, stdout=True,
                                            stderr=True)).url
    assert stored(deps, url) == AttachRequest(FULL, False, True, True, True)
    with pytest.raises(InvalidArgument):
        attach_rpc(deps, pb.AttachRequest(container_id=FULL))
    with pytest.raises(InvalidArgument):
        attach_rpc(deps, pb.AttachRequest(container_id=FULL, tty=True, stdout=True,
                                          stderr=True))
    with pytest.raises(FailedPrecondition):
        attach_rpc(deps, pb.AttachRequest(container_id="exited", stdout=True))


def test_port_forward(deps: StreamingDeps) -> None:
    url = port_forward_rpc(deps, pb.PortForwardRequest(pod_sandbox_id="ppp", port=[80, 443])).url
    assert stored(deps, url) == PortForwardRequest(POD, (80, 443))
    with pytest.raises(InvalidArgument):
        port_forward_rpc(deps, pb.PortForwardRequest(port=[80]))
    with pytest.raises(NotFound):
        port_forward_rpc(deps, pb.PortForwardRequest(pod_sandbox_id="nope", port=[80]))
    with pytest.raises(FailedPrecondition):
        port_forward_rpc(deps, pb.PortForwardRequest(pod_sandbox_id="stopped", port=[80]))
    with pytest.raises(RequestError):  # INVALID_ARGUMENT through the registered mapping
        port_forward_rpc(deps, pb.PortForwardRequest(pod_sandbox_id=POD, port=[70000]))


def test_request_error_maps_to_invalid_argument() -> None:
    import grpc

    from crid.server.errors import status_for
    assert status_for(RequestError("x")) == grpc.StatusCode.INVALID_ARGUMENT
