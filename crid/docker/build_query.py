"""POST /build's query and headers, checked before anything is read or built.

The parameters are moby's (api/swagger.yaml, ImageBuild); those crid does not serve are
refused with a 400 or 501 that says so, rather than ignored: a BuildKit request (version=2),
a remote context, a platform other than the host's, a network other than bridge/host/none.
Resource limits (memory, cpushares ...) and extrahosts are accepted and not applied.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from crid.docker.errors import BadRequest, NotImplementedYet
from crid.docker.http import Request
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
        auth=_registry_config(req.header("x-registry-config")))


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
