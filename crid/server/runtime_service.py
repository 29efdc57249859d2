"""runtime.v1.RuntimeService: thin translation between CRI messages and the domain."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from crid import config as configmod
from crid.api import api_pb2 as pb
from crid.api import api_pb2_grpc
from crid.network.api import PodNetwork
from crid.pods import PodManager
from crid.runtime_info import (
    Condition,
    NetworkStatusSource,
    PodCidrStore,
    handler_features,
    parse_pod_cidrs,
)
from crid.server import container_rpc, metrics_rpc, pod_convert, stats_rpc, streaming_rpc
from crid.server.container_rpc import ContainerDeps
from crid.server.stats_rpc import StatsDeps
from crid.server.streaming_rpc import StreamingDeps
from crid.server.unimplemented import fill_unimplemented
from crid.server.wire import passthrough
from crid.version import CRI_API_VERSION, KUBELET_API_VERSION, RUNTIME_NAME, __version__


@dataclass
class RuntimeServiceDeps:
    config: Callable[[], configmod.Config]  # the running one: a reload replaces it
    network: NetworkStatusSource
    pod_cidrs: PodCidrStore
    pods: PodManager
    pod_network: PodNetwork
    containers: ContainerDeps
    stats: StatsDeps
    streaming: StreamingDeps
    pod_wire: pod_convert.PodWire = field(default_factory=pod_convert.PodWire)


class RuntimeService(api_pb2_grpc.RuntimeServiceServicer):
    def __init__(self, deps: RuntimeServiceDeps) -> None:
        self._d = deps

    def Version(self, request: pb.VersionRequest, context: grpc.ServicerContext) -> Any:
        return pb.VersionResponse(version=KUBELET_API_VERSION, runtime_name=RUNTIME_NAME,
                                  runtime_version=__version__,
                                  runtime_api_version=CRI_API_VERSION)

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> Any:
        conditions = [Condition("RuntimeReady", True), self._d.network.network_condition()]
        resp = pb.StatusResponse(
            status=pb.RuntimeStatus(conditions=[
                pb.RuntimeCondition(type=c.type, status=c.status, reason=c.reason,
                                    message=c.message) for c in conditions]),
            runtime_handlers=self._handlers(),
            features=pb.RuntimeFeatures(supplemental_groups_policy=True),
        )
        if request.verbose:
            resp.info["config"] = json.dumps(configmod.to_dict(self._d.config()))
            resp.info["network"] = json.dumps({"pod_cidrs": self._d.pod_cidrs.get()})
        return resp

    def _handlers(self) -> list[pb.RuntimeHandler]:
        f = handler_features()
        features = pb.RuntimeHandlerFeatures(
            recursive_read_only_mounts=f.recursive_read_only_mounts,
            user_namespaces=f.user_namespaces)
        # The default handler is listed under the empty name too: the kubelet and the
        # conformance suite look the default up as "".
        names = ["", self._d.config().default_runtime_handler]
        return [pb.RuntimeHandler(name=n, features=features) for n in names]

    def RuntimeConfig(self, request: pb.RuntimeConfigRequest,
                      context: grpc.ServicerContext) -> Any:
        driver = (pb.CgroupDriver.SYSTEMD if self._d.config().cgroup_driver == "systemd"
                  else pb.CgroupDriver.CGROUPFS)
        return pb.RuntimeConfigResponse(linux=pb.LinuxRuntimeConfiguration(cgroup_driver=driver))

    def UpdateRuntimeConfig(self, request: pb.UpdateRuntimeConfigRequest,
                            context: grpc.ServicerContext) -> Any:
        cidr = request.runtime_config.network_config.pod_cidr
        if cidr:
            cidrs = parse_pod_cidrs(cidr)
            self._d.pod_network.update_pod_cidr(",".join(cidrs))
            self._d.pod_cidrs.set(cidrs)
        return pb.UpdateRuntimeConfigResponse()

    # Pod sandboxes: each method is one call into pod_convert (protobuf stops there).

    def RunPodSandbox(self, request: pb.RunPodSandboxRequest, context: Any) -> Any:
        return pod_convert.run_rpc(self._d.pods, request, lambda: not context.is_active())

    def StopPodSandbox(self, request: pb.StopPodSandboxRequest, context: Any) -> Any:
        container_rpc.stop_pod_containers(self._d.containers, request.pod_sandbox_id)
        return pod_convert.stop_rpc(self._d.pods, request)

    def RemovePodSandbox(self, request: pb.RemovePodSandboxRequest, context: Any) -> Any:
        container_rpc.remove_pod_containers(self._d.containers, request.pod_sandbox_id)
        return pod_convert.remove_rpc(self._d.pods, request)

    def PodSandboxStatus(self, request: pb.PodSandboxStatusRequest, context: Any) -> Any:
        return pod_convert.status_rpc(self._d.pods, request, self._d.pod_wire)

    def ListPodSandbox(self, request: pb.ListPodSandboxRequest, context: Any) -> Any:
        return pod_convert.list_rpc(self._d.pods, request, self._d.pod_wire)

    def StreamPodSandboxes(self, request: pb.StreamPodSandboxesRequest, context: Any) -> Any:
        return pod_convert.stream_rpc(self._d.pods, request, self._d.pod_wire)

    def UpdatePodSandboxResources(self, request: pb.UpdatePodSandboxResourcesRequest,
                                  context: Any) -> Any:
        return pod_convert.update_resources_rpc(self._d.pods, request)

    # Containers: each method is one call into container_rpc (protobuf stops there).

    def CreateContainer(self, request: pb.CreateContainerRequest, context: Any) -> Any:
        return container_rpc.create_rpc(self._d.containers, request,
                                        lambda: not context.is_active())

    def StartContainer(self, request: pb.StartContainerRequest, context: Any) -> Any:
        return container_rpc.start_rpc(self._d.containers, request)

    def StopContainer(self, request: pb.StopContainerRequest, context: Any) -> Any:
        return container_rpc.stop_rpc(self._d.containers, request)

    def RemoveContainer(self, request: pb.RemoveContainerRequest, context: Any) -> Any:
        return container_rpc.remove_rpc(self._d.containers, request)

    def ContainerStatus(self, request: pb.ContainerStatusRequest, context: Any) -> Any:
        return container_rpc.status_rpc(self._d.containers, request)

    def ListContainers(self, request: pb.ListContainersRequest, context: Any) -> Any:
        return container_rpc.list_rpc(self._d.containers, request)

    def StreamContainers(self, request: pb.StreamContainersRequest, context: Any) -> Any:
        return container_rpc.stream_rpc(self._d.containers, request)

    def UpdateContainerResources(self, request: pb.UpdateContainerResourcesRequest,
                                 context: Any) -> Any:
        return container_rpc.update_rpc(self._d.containers, request)

    def ReopenContainerLog(self, request: pb.ReopenContainerLogRequest, context: Any) -> Any:
        return container_rpc.reopen_log_rpc(self._d.containers, request)

    def ExecSync(self, request: pb.ExecSyncRequest, context: Any) -> Any:
        return container_rpc.exec_sync_rpc(self._d.containers, request)

    def GetContainerEvents(self, request: pb.GetEventsRequest, context: Any) -> Any:
        return container_rpc.events_rpc(self._d.containers, request, context.is_active)

    # Streaming: each returns the URL of a session on the streaming server.

    def Exec(self, request: pb.ExecRequest, context: Any) -> Any:
        return streaming_rpc.exec_rpc(self._d.streaming, request)

    def Attach(self, request: pb.AttachRequest, context: Any) -> Any:
        return streaming_rpc.attach_rpc(self._d.streaming, request)

    def PortForward(self, request: pb.PortForwardRequest, context: Any) -> Any:
        return streaming_rpc.port_forward_rpc(self._d.streaming, request)

    # Stats and metrics.

    def ContainerStats(self, request: pb.ContainerStatsRequest, context: Any) -> Any:
        return stats_rpc.container_stats_rpc(self._d.stats, request)

    def ListContainerStats(self, request: pb.ListContainerStatsRequest, context: Any) -> Any:
        return stats_rpc.list_container_stats_rpc(self._d.stats, request)

    def StreamContainerStats(self, request: pb.StreamContainerStatsRequest,
                             context: Any) -> Any:
        return stats_rpc.stream_container_stats_rpc(self._d.stats, request)

    def PodSandboxStats(self, request: pb.PodSandboxStatsRequest, context: Any) -> Any:
        return stats_rpc.pod_stats_rpc(self._d.stats, request)

    def ListPodSandboxStats(self, request: pb.ListPodSandboxStatsRequest, context: Any) -> Any:
        return stats_rpc.list_pod_stats_rpc(self._d.stats, request)

    def StreamPodSandboxStats(self, request: pb.StreamPodSandboxStatsRequest,
                              context: Any) -> Any:
        return stats_rpc.stream_pod_stats_rpc(self._d.stats, request)

    def ListMetricDescriptors(self, request: pb.ListMetricDescriptorsRequest,
                              context: Any) -> Any:
        return metrics_rpc.descriptors_rpc(request)

    def ListPodSandboxMetrics(self, request: pb.ListPodSandboxMetricsRequest,
                              context: Any) -> Any:
        return metrics_rpc.pod_metrics_rpc(self._d.stats, request)

    def StreamPodSandboxMetrics(self, request: pb.StreamPodSandboxMetricsRequest,
                                context: Any) -> Any:
        return metrics_rpc.stream_pod_metrics_rpc(self._d.stats, request)


fill_unimplemented(RuntimeService, "RuntimeService")

# RPCs whose servicer may answer with prebuilt wire bytes (crid/server/wire.py).
PREBUILT = ("ListContainers", "StreamContainers", "ContainerStatus", "ListPodSandbox",
            "StreamPodSandboxes", "PodSandboxStatus")


class _Registration:
    """Stands in for the server while the generated code registers the service, so the
    handlers can be adjusted before the real server gets them."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass  # made again from the adjusted handlers below

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.service, self.handlers = service, handlers


def add_to_server(servicer: RuntimeService, server: grpc.Server) -> None:
    """`api_pb2_grpc.add_RuntimeServiceServicer_to_server`, with the PREBUILT RPCs' serializers
    passing prebuilt bytes through."""
    reg = _Registration()
    api_pb2_grpc.add_RuntimeServiceServicer_to_server(servicer, reg)
    for name in PREBUILT:
        h = reg.handlers[name]
        reg.handlers[name] = h._replace(  # type: ignore[attr-defined]
            response_serializer=passthrough(h.response_serializer))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(reg.service, reg.handlers),))
    server.add_registered_method_handlers(reg.service, reg.handlers)
