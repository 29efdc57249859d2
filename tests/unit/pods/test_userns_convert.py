"""userns_options from the wire: absent or NODE is the host's user namespace, as before."""

from __future__ import annotations

from crid.api import api_pb2 as pb
from crid.pods import PodId, PodSandbox, PodState
from crid.pods.model import IdMapping, UserNamespace
from crid.server.pod_convert import spec_from_pb, status_pb


def _request(ns: pb.NamespaceOption | None = None) -> pb.RunPodSandboxRequest:
    cfg = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="n", uid="u", namespace="s"))
    if ns is not None:
        cfg.linux.security_context.namespace_options.CopyFrom(ns)
    return pb.RunPodSandboxRequest(config=cfg)


def test_absent_and_node_userns_options_are_the_hosts() -> None:
    assert spec_from_pb(_request()).userns is None
    assert spec_from_pb(_request(pb.NamespaceOption())).userns is None
    node = pb.NamespaceOption(userns_options=pb.UserNamespace(mode=pb.NODE))
    assert spec_from_pb(_request(node)).userns is None


def test_a_pod_user_namespace_round_trips_to_the_status() -> None:
    m = pb.IDMapping(container_id=0, host_id=1000, length=100000)
    ns = pb.NamespaceOption(userns_options=pb.UserNamespace(mode=pb.POD, uids=[m], gids=[m]))
    spec = spec_from_pb(_request(ns))
    assert spec.userns == UserNamespace("POD", (IdMapping(0, 1000, 100000),),
                                        (IdMapping(0, 1000, 100000),))
    got = status_pb(PodSandbox(PodId.new(), spec, PodState.READY, 1)) \
        .linux.namespaces.options.userns_options
    assert got == ns.userns_options


def test_an_empty_pod_mode_message_is_kept_for_validation_to_refuse() -> None:
    ns = pb.NamespaceOption(userns_options=pb.UserNamespace(mode=pb.POD))
    assert spec_from_pb(_request(ns)).userns == UserNamespace("POD", (), ())
