"""POST /build's query and headers, checked before anything is read or built.

The parameters are moby's (api/swagger.yaml, ImageBuild); those crid does not serve are
refused with a 400 or 501 that says so, rather than ignored: a BuildKit request (version=2),
a remote context, a platform other than the host's, a network other than bridge/host/none.
The RUN containers get the resource limits (memory, memswap, cpushares, cpuperiod,
cpuquota, cpusetcpus); `rm=0` keeps them as Docker containers (`docker ps -a` lists them);
extrahosts and shmsize are accepted and not applied.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from crid.docker.errors import BadRequest, NotImplementedYet
from crid.docker.http import Request
from crid.resources import Resources
from imagestore import Credentials, InvalidReference, host_platform, parse_reference

_NETWORKS = ("", "default", "bridge", "host", "none")


@dataclass(frozen=True)
class BuildQuery:
    dockerfile: str = "Dockerfile"
    tags: tuple[str, ...] = ()
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    pull: bool = False
    quiet: bool = False
    host_network: bool = False
    auth: dict[str, Credentials] = field(default_factory=dict)  # registry host -> credentials
    resources: Resources = Resources()  # of each RUN container
    keep_containers: bool = False  # rm=0: the RUN containers stay, as Docker containers


def parse_query(req: Request) -> BuildQuery:
    """The build's options.

    Raises:
        BadRequest: a malformed parameter or tag; NotImplementedYet: an option not served.
    """
    if req.arg("version", "1") == "2":
        raise BadRequest("BuildKit builds (version=2) are not served by crid; use the classic "
                         "builder (DOCKER_BUILDKIT=0)")
    if req.arg("remote"):
        raise NotImplementedYet("remote build contexts (git or URL) are not served; send the "
                                "context as the request body")
    _check_platform(req.arg("platform"))
    network = req.arg("networkmode")
    if network not in _NETWORKS:
        raise BadRequest(f"network mode {network[:60]!r} is not served for builds: use "
                         "bridge, host or none")
    return BuildQuery(
        dockerfile=req.arg("dockerfile") or "Dockerfile",
        tags=tuple(_check_tag(t) for t in req.query.get("t", []) if t),
        build_args=_string_map(req, "buildargs", allow_null=True),
        labels={k: v or "" for k, v in _string_map(req, "labels").items()},
        target=req.arg("target"), no_cache=req.flag("nocache"), pull=req.flag("pull"),
        quiet=req.flag("q"), host_network=network == "host",
        auth=_registry_config(req.header("x-registry-config")),
        resources=_resources(req), keep_containers=not req.flag("rm", True))


_MIN_MEMORY = 6 << 20  # Docker's floor: a smaller limit only kills the step


def _resources(req: Request) -> Resources:
    """The RUN containers' limits (moby's names; 0 = unset).

    Raises:
        BadRequest: a negative or malformed value, memory under 6 MB, swap under memory.
    """
    values = {}
    for name in ("memory", "memswap", "cpushares", "cpuperiod", "cpuquota"):
        value = req.int_arg(name, 0) or 0
        if value < 0 and not (name == "memswap" and value == -1):
            raise BadRequest(f"{name} must not be negative")
        values[name] = value
    memory, swap = values["memory"], values["memswap"]
    if memory and memory < _MIN_MEMORY:
        raise BadRequest("Minimum memory limit allowed is 6MB")
    if swap > 0 and (not memory or swap < memory):
        raise BadRequest("Minimum memoryswap limit should be larger than memory limit, "
                         "see usage")
    if values["cpuquota"] and values["cpuquota"] < 1000:
        raise BadRequest("CPU cfs quota cannot be less than 1ms (i.e. 1000)")
    if values["cpuperiod"] and not 1000 <= values["cpuperiod"] <= 1_000_000:
        raise BadRequest("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                         "than 1 second (i.e. 1000000)")
    cpus = req.arg("cpusetcpus")
    if cpus and not all(part.replace("-", "", 1).isdigit() for part in cpus.split(",")):
        raise BadRequest(f"invalid cpusetcpus {cpus[:40]!r}")
    period = values["cpuperiod"] or (100_000 if values["cpuquota"] else 0)
    return Resources(cpu_period=period, cpu_quota=values["cpuquota"],
                     cpu_shares=values["cpushares"], memory_limit=memory,
                     memory_swap_limit=swap if swap > 0 else 0, cpuset_cpus=cpus)


def _check_tag(tag: str) -> str:
    try:
        ref = parse_reference(tag)
    except InvalidReference as e:
        raise BadRequest(f"invalid reference format: {e}") from None
    if ref.digest is not None:
        raise BadRequest(f"invalid tag {tag[:100]!r}: a build tag cannot hold a digest")
    return tag


def _check_platform(text: str) -> None:
    if not text:
        return
    host = host_platform()
    os_, _, arch = text.lower().partition("/")
    arch, _, variant = arch.partition("/")
    if os_ != host.os or (arch and arch != host.architecture) or \
            (variant and variant != (host.variant or "")):
        raise BadRequest(f"platform {text[:60]!r} is not this host's "
                         f"({host.os}/{host.architecture}): crid builds for the host only")


def _string_map(req: Request, name: str, allow_null: bool = False) -> dict[str, Any]:
    value = req.json_arg(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and (isinstance(v, str) or (allow_null and v is None))
            for k, v in value.items()):
        raise BadRequest(f"query parameter {name} must be a JSON object of strings")
    return dict(value)


def _registry_config(header: str) -> dict[str, Credentials]:
    """X-Registry-Config: base64url JSON, registry host -> {username, password}."""
    if not header:
        return {}
    try:
        auth = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        raise BadRequest("X-Registry-Config is not base64-encoded JSON") from None
    if not isinstance(auth, dict):
        raise BadRequest("X-Registry-Config is not a JSON object")
    out: dict[str, Credentials] = {}
    for host, entry in auth.items():
        if isinstance(entry, dict) and entry.get("username"):
            key = str(host).removeprefix("https://").removeprefix("http://").split("/")[0]
            out[key] = Credentials(str(entry["username"]), str(entry.get("password", "")))
    return out
