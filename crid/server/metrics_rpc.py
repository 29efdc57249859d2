"""ListMetricDescriptors and ListPodSandboxMetrics with cAdvisor's metric names.

The values come from the same samples as the stats RPCs (`stats_rpc.pod_stats`), so the two
views of a pod never disagree.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from crid.api import api_pb2 as pb
from crid.pods import PodFilter
from crid.pods.model import CRI
from crid.server.stats_rpc import StatsDeps, pod_stats

METRICS_CHUNK = 20  # pods per StreamPodSandboxMetrics message

_C, _G = pb.COUNTER, pb.GAUGE
_CONTAINER_LABELS = ["container", "id", "image", "name", "namespace", "pod"]
_NET_LABELS = ["interface"]

# name -> (help, type, value from a ContainerStats or PodSandboxStats message)
_CONTAINER: dict[str, tuple[str, pb.MetricType, Callable[[pb.ContainerStats], int]]] = {
    "container_cpu_usage_seconds_total": (
        "Cumulative cpu time consumed in seconds.", _C,
        lambda s: s.cpu.usage_core_nano_seconds.value // 1_000_000_000),
    "container_memory_usage_bytes": (
        "Current memory usage in bytes, including all memory regardless of when it was "
        "accessed.", _G, lambda s: s.memory.usage_bytes.value),
    "container_memory_working_set_bytes": (
        "Current working set in bytes.", _G, lambda s: s.memory.working_set_bytes.value),
    "container_memory_rss": ("Size of RSS in bytes.", _G, lambda s: s.memory.rss_bytes.value),
    "container_memory_failures_total": (
        "Cumulative count of memory allocation failures (page faults).", _C,
        lambda s: s.memory.page_faults.value),
    "container_memory_swap": ("Container swap usage in bytes.", _G,
                              lambda s: s.swap.swap_usage_bytes.value),
    "container_fs_usage_bytes": ("Number of bytes that are consumed by the container on this "
                                 "filesystem.", _G, lambda s: s.writable_layer.used_bytes.value),
    "container_fs_inodes_total": ("Number of inodes used by the container.", _G,
                                  lambda s: s.writable_layer.inodes_used.value),
}
_NETWORK: dict[str, tuple[str, Callable[[pb.NetworkInterfaceUsage], int]]] = {
    "container_network_receive_bytes_total": ("Cumulative count of bytes received.",
                                              lambda i: i.rx_bytes.value),
    "container_network_receive_errors_total": ("Cumulative count of errors encountered "
                                               "while receiving.", lambda i: i.rx_errors.value),
    "container_network_transmit_bytes_total": ("Cumulative count of bytes transmitted.",
                                               lambda i: i.tx_bytes.value),
    "container_network_transmit_errors_total": (
        "Cumulative count of errors encountered while transmitting.",
        lambda i: i.tx_errors.value),
}


def descriptors_rpc(req: pb.ListMetricDescriptorsRequest) -> pb.ListMetricDescriptorsResponse:
    out = [pb.MetricDescriptor(name=n, help=h, label_keys=_CONTAINER_LABELS)
           for n, (h, _, _) in _CONTAINER.items()]
    out += [pb.MetricDescriptor(name=n, help=h, label_keys=_CONTAINER_LABELS + _NET_LABELS)
            for n, (h, _) in _NETWORK.items()]
    return pb.ListMetricDescriptorsResponse(descriptors=out)


def pod_metrics_rpc(d: StatsDeps,
                    req: pb.ListPodSandboxMetricsRequest) -> pb.ListPodSandboxMetricsResponse:
    pods = d.pods.list_pods(PodFilter(front_door=CRI))
    return pb.ListPodSandboxMetricsResponse(pod_metrics=[_pod_metrics(d, p) for p in pods])


def stream_pod_metrics_rpc(d: StatsDeps, req: pb.StreamPodSandboxMetricsRequest
                           ) -> Iterator[pb.StreamPodSandboxMetricsResponse]:
    """ListPodSandboxMetrics' content as a stream (cri-api: the kubelet reads it to the end),
    METRICS_CHUNK pods per message so a big node never makes one oversized reply; each pod is
    measured as it is sent."""
    chunk: list[pb.PodSandboxMetrics] = []
    for pod in d.pods.list_pods(PodFilter(front_door=CRI)):
        chunk.append(_pod_metrics(d, pod))
        if len(chunk) == METRICS_CHUNK:
            yield pb.StreamPodSandboxMetricsResponse(pod_sandbox_metrics=chunk)
            chunk = []
    if chunk:
        yield pb.StreamPodSandboxMetricsResponse(pod_sandbox_metrics=chunk)


def _pod_metrics(d: StatsDeps, pod: Any) -> pb.PodSandboxMetrics:
    st = pod_stats(d, pod)
    md = pod.spec.metadata
    ts = time.time_ns()
    metrics = [pb.Metric(name=n, timestamp=ts, metric_type=_C,
                         label_values=["POD", pod.id.value, "", md.name, md.namespace,
                                       md.name, i.name], value=pb.UInt64Value(value=f(i)))
               for i in st.linux.network.interfaces for n, (_, f) in _NETWORK.items()]
    containers = [pb.ContainerMetrics(container_id=c.attributes.id, metrics=[
        pb.Metric(name=n, timestamp=ts, metric_type=t,
                  label_values=[c.attributes.metadata.name, c.attributes.id, "",
                                c.attributes.metadata.name, md.namespace, md.name],
                  value=pb.UInt64Value(value=f(c)))
        for n, (_, t, f) in _CONTAINER.items()]) for c in st.linux.containers]
    return pb.PodSandboxMetrics(pod_sandbox_id=pod.id.value, metrics=metrics,
                                container_metrics=containers)
