"""Docker's `filters` query parameter: JSON `{"name": ["v", ...]}` (or the legacy
`{"name": {"v": true}}`), checked against the names an endpoint knows."""

from __future__ import annotations

from collections.abc import Collection

from crid.docker.errors import BadRequest
from crid.docker.http import Request


def parse_filters(req: Request, known: Collection[str]) -> dict[str, list[str]]:
    """The filters as name -> values.

    Raises:
        BadRequest: not JSON of that shape, or a filter name the endpoint does not know
        (Docker's "invalid filter").
    """
    raw = req.json_arg("filters")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest("filters must be a JSON object")
    out: dict[str, list[str]] = {}
    for name, values in raw.items():
        if name not in known:
            raise BadRequest(f"invalid filter '{name}'")
        if isinstance(values, dict):
            values = [k for k, v in values.items() if v]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise BadRequest(f"filter {name!r} must be a list of strings")
        out[name] = values
    return out
