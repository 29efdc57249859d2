"""API versions: what this front door speaks, and the /v1.NN/ path prefix clients send."""

from __future__ import annotations

import re

from crid.docker.errors import BadRequest

API_VERSION = "1.43"  # the newest served; clients negotiate down to it (/_ping API-Version)
MIN_API_VERSION = "1.24"  # docker-py's own minimum
_PREFIX = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")


def _tuple(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def split_version(path: str) -> tuple[str, str]:
    """(version, path without the prefix); version "" when the path has none.

    Raises:
        BadRequest: a version outside MIN_API_VERSION..API_VERSION (Docker's wording).
    """
    m = _PREFIX.match(path)
    if not m:
        return "", path
    version = f"{int(m.group(1))}.{int(m.group(2))}"
    if _tuple(version) > _tuple(API_VERSION):
        raise BadRequest(f"client version {version} is too new. Maximum supported API "
                         f"version is {API_VERSION}")
    if _tuple(version) < _tuple(MIN_API_VERSION):
        raise BadRequest(f"client version {version} is too old. Minimum supported API "
                         f"version is {MIN_API_VERSION}, please upgrade your client to a "
                         "newer version")
    return version, m.group(3)


def at_least(version: str, wanted: str) -> bool:
    """Whether a request's API version (from its path; "" = the newest served) is `wanted`
    or newer."""
    return _tuple(version or API_VERSION) >= _tuple(wanted)
