"""Network endpoints: create, list, inspect, remove, connect, disconnect, prune
(`docker network ...`) over crid's user-defined bridge networks (crid/network/named.py);
`bridge`, `host` and `none` are listed as Docker's predefined networks."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

from crid.docker.containers_view import find
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest, Forbidden
from crid.docker.filters import parse_filters
from crid.docker.http import Request, Response, empty, json_response
from crid.docker.inspect import rfc3339
from crid.docker.logs import parse_time
from crid.docker.router import Router
from crid.errors import FailedPrecondition, NotFound
from crid.network.api import PodNetworkRequest
from crid.network.named import NetworkRecord, NetworkRequest

PREDEFINED = ("bridge", "host", "none")
_LIST_FILTERS = ("driver", "id", "label", "name", "scope", "type", "dangling")
_PRUNE_FILTERS = ("until", "label")


def _predefined_id(name: str) -> str:
    return hashlib.sha256(f"crid-network-{name}".encode()).hexdigest()


def _predefined(name: str) -> dict[str, Any]:
    return {"Name": name, "Id": _predefined_id(name), "Created": rfc3339(0), "Scope": "local",
            "Driver": {"bridge": "bridge", "host": "host", "none": "null"}[name],
            "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": None, "Config": []},
            "Internal": False, "Attachable": False, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": {},
            "Options": {}, "Labels": {}}


def network_json(d: DockerDeps, rec: NetworkRecord) -> dict[str, Any]:
    """Docker's Network object, with its attached containers."""
    containers = {}
    for lease in d.networks.leases(rec.id):
        names = d.networks.names(lease.pod_id)
        v4 = next((a for a in lease.addresses if ":" not in a), "")
        containers[lease.pod_id] = {"Name": names[0] if names else "",
                                    "EndpointID": _endpoint_id(rec.id, lease.pod_id),
                                    "MacAddress": "", "IPv4Address": v4, "IPv6Address": ""}
    return {"Name": rec.name, "Id": rec.id, "Created": rfc3339(int(rec.created_at * 1e9)),
            "Scope": "local", "Driver": "bridge", "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None,
                     "Config": [{"Subnet": rec.subnet, "Gateway": rec.gateway}]},
            "Internal": rec.internal, "Attachable": rec.attachable, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
            "Options": rec.options, "Labels": rec.labels}


def _endpoint_id(net_id: str, pod_id: str) -> str:
    return hashlib.sha256(f"{net_id}/{pod_id}".encode()).hexdigest()


def _object(req: Request) -> dict[str, Any]:
    body = req.json({})
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _get(body: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise BadRequest(f"{key}: wrong type {type(value).__name__}")
    return value


def _str_map(body: dict[str, Any], key: str) -> dict[str, str]:
    value = _get(body, key, dict, {})
    if not all(isinstance(v, str) for v in value.values()):
        raise BadRequest(f"{key}: values must be strings")
    return value


def create(d: DockerDeps, req: Request) -> Response:
    body = _object(req)
    name = _get(body, "Name", str, "")
    if not name:
        raise BadRequest("network name is required")
    if name in PREDEFINED:
        raise Forbidden(f"{name} is a pre-defined network and cannot be created")
    driver = _get(body, "Driver", str, "") or "bridge"
    if driver != "bridge":
        raise NotFound(f"plugin \"{driver[:40]}\" not found (crid serves bridge networks)")
    if _get(body, "Internal", bool, False):
        raise BadRequest("internal networks (no outside connectivity) are not served")
    if _get(body, "EnableIPv6", bool, False):
        raise BadRequest("IPv6 on user-defined networks is not served")
    ipam = _get(body, "IPAM", dict, {})
    configs = _get(ipam, "Config", list, [])
    if len(configs) > 1 or not all(isinstance(c, dict) for c in configs):
        raise BadRequest("IPAM.Config: at most one pool (an object) is served")
    pool = configs[0] if configs else {}
    if _get(pool, "IPRange", str, "") or _get(pool, "AuxiliaryAddresses", dict, {}):
        raise BadRequest("IPAM IPRange and AuxiliaryAddresses are not served")
    rec = d.networks.create(NetworkRequest(
        name, subnet=_get(pool, "Subnet", str, ""), gateway=_get(pool, "Gateway", str, ""),
        labels=_str_map(body, "Labels"), options=_str_map(body, "Options"),
        attachable=_get(body, "Attachable", bool, False)))
    d.journal.add("network", "create", rec.id, name=rec.name, type="bridge")
    return json_response({"Id": rec.id, "Warning": ""}, status=201)


def _match(d: DockerDeps, item: dict[str, Any], builtin: bool, f: dict[str, list[str]]
           ) -> bool:
    labels = item["Labels"] or {}

    def label(text: str) -> bool:
        key, sep, value = text.partition("=")
        return key in labels and (not sep or labels[key] == value)
    checks = {
        "driver": lambda v: item["Driver"] == v,
        "id": lambda v: item["Id"].startswith(v),
        "name": lambda v: v in item["Name"],
        "scope": lambda v: v == "local",
        "type": lambda v: v == ("builtin" if builtin else "custom"),
        "dangling": lambda v: (v.lower() in ("true", "1")) == (not builtin and
                                                              not item["Containers"]),
    }
    return all(all(label(v) for v in f["label"]) if name == "label" else
               any(checks[name](v) for v in values) for name, values in f.items())


def list_networks(d: DockerDeps, req: Request) -> Response:
    f = parse_filters(req, _LIST_FILTERS)
    items = [(_predefined(n), True) for n in PREDEFINED] + \
        [(network_json(d, r), False) for r in d.networks.all()]
    return json_response([item for item, builtin in items if _match(d, item, builtin, f)])


def inspect(d: DockerDeps, req: Request) -> Response:
    ref = req.params["name"]
    for name in PREDEFINED:
        if ref in (name, _predefined_id(name)):
            return json_response(_predefined(name))
    return json_response(network_json(d, d.networks.get(ref)))


def _user_network(d: DockerDeps, ref: str) -> NetworkRecord:
    if ref in PREDEFINED or any(ref == _predefined_id(n) for n in PREDEFINED):
        raise Forbidden(f"{ref[:64]} is a pre-defined network and cannot be changed here")
    return d.networks.get(ref)


def remove(d: DockerDeps, req: Request) -> Response:
    rec = d.networks.remove(_user_network(d, req.params["name"]).id)
    d.journal.add("network", "destroy", rec.id, name=rec.name, type="bridge")
    return empty()


def connect(d: DockerDeps, req: Request) -> Response:
    rec = _user_network(d, req.params["name"])
    body = _object(req)
    c = find(d, _get(body, "Container", str, ""))
    if c.body.network_mode == "host" or c.pod.spec.host_network:
        raise BadRequest("container sharing network namespace with host network cannot be "
                         "connected to any other network")
    endpoint = _get(body, "EndpointConfig", dict, {})
    aliases = _get(endpoint, "Aliases", list, [])
    if not all(isinstance(a, str) for a in aliases):
        raise BadRequest("EndpointConfig.Aliases: must be a list of strings")
    used = d.networks.ifnames(c.id) | ({"eth0"} if c.body.network_mode != "none" else set())
    ifname = next(f"eth{n}" for n in range(len(used) + 1) if f"eth{n}" not in used)
    netns = str(d.pods.paths(c.pod).ns("net"))
    d.networks.connect(rec.id, PodNetworkRequest(c.id, netns, pod_name=c.name, ifname=ifname,
                                                 default_route=False), list(aliases))
    d.journal.add("network", "connect", rec.id, name=rec.name, type="bridge", container=c.id)
    return Response(200, b"", content_type="text/plain; charset=utf-8")


def disconnect(d: DockerDeps, req: Request) -> Response:
    rec = _user_network(d, req.params["name"])
    body = _object(req)
    ref = _get(body, "Container", str, "")
    try:
        pod_id = find(d, ref).id
    except NotFound:
        if not _get(body, "Force", bool, False):
            raise
        pod_id = ref  # Force: a container already gone, known by its id
    d.networks.disconnect(rec.id, pod_id)
    d.journal.add("network", "disconnect", rec.id, name=rec.name, type="bridge",
                  container=pod_id)
    return Response(200, b"", content_type="text/plain; charset=utf-8")


def prune(d: DockerDeps, req: Request) -> Response:
    """Removes user-defined networks no container is attached to (`until`, `label`)."""
    f = parse_filters(req, _PRUNE_FILTERS)
    until = min((parse_time(v) for v in f.get("until", [])), default=2.0 ** 63)
    gone = []
    for rec in d.networks.all():
        item = network_json(d, rec)
        if rec.created_at >= until or item["Containers"] or \
                not _match(d, item, False, {"label": f.get("label", [])}):
            continue
        with contextlib.suppress(FailedPrecondition, NotFound):
            d.networks.remove(rec.id)
            gone.append(rec.name)
            d.journal.add("network", "destroy", rec.id, name=rec.name, type="bridge")
    return json_response({"NetworksDeleted": gone or None})


def container_names(d: DockerDeps, pod_id: str) -> list[str]:
    """What a container answers to on its networks: its name and short id."""
    try:
        return [d.pods.status(pod_id).spec.metadata.name, pod_id[:12]]
    except Exception:  # the pod is gone (a lease about to be released)
        return []


def register(router: Router, d: DockerDeps) -> None:
    d.networks.names = lambda pod_id: container_names(d, pod_id)
    router.add("POST", "/networks/create", lambda req: create(d, req))
    router.add("GET", "/networks", lambda req: list_networks(d, req))
    router.add("POST", "/networks/prune", lambda req: prune(d, req))
    router.add("POST", "/networks/{id}/connect",
               lambda req: connect(d, _named(req)))
    router.add("POST", "/networks/{id}/disconnect",
               lambda req: disconnect(d, _named(req)))
    router.add("GET", "/networks/{name}", lambda req: inspect(d, req))
    router.add("DELETE", "/networks/{name}", lambda req: remove(d, req))


def _named(req: Request) -> Request:
    req.params["name"] = req.params["id"]
    return req
