"""`docker top`: the host's `ps` (procps) with the client's arguments, its rows narrowed to
the container's processes, as Docker does."""

from __future__ import annotations

import subprocess

from crid.docker.containers_view import find
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest, Conflict
from crid.docker.http import Request, Response, json_response
from crid.errors import Unavailable

PS = "/usr/bin/ps"
MAX_ARGS = 1024
PS_TIMEOUT = 10


def top(d: DockerDeps, req: Request) -> Response:
    c = find(d, req.params["id"])
    if not c.running or c.record is None:
        raise Conflict(f"Container {c.id} is not running")
    args = req.arg("ps_args", "-ef")
    if len(args) > MAX_ARGS:
        raise BadRequest("ps_args is too long")
    pids = {str(p) for p in d.runtime.pids(c.record.id)}
    try:  # an argument list, no shell: the client's text only ever reaches ps's parser
        proc = subprocess.run([PS, *args.split()], capture_output=True, text=True,
                              timeout=PS_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unavailable(f"running ps for container {c.id}: {e}") from e
    if proc.returncode != 0:
        raise BadRequest(f"ps {args[:80]}: {proc.stderr.strip()[:200]}")
    return json_response(parse_ps(proc.stdout, pids))


def parse_ps(output: str, pids: set[str]) -> dict[str, list]:  # type: ignore[type-arg]
    """Titles and the rows whose PID is one of `pids`; the last column (the command) keeps
    its spaces.

    Raises:
        BadRequest: ps printed no PID column (arguments such as `-o comm`).
    """
    lines = output.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise BadRequest("Couldn't find PID field in ps output")
    at = titles.index("PID")
    rows = [line.split(None, len(titles) - 1) for line in lines[1:] if line.strip()]
    return {"Titles": titles, "Processes": [r for r in rows if len(r) > at and r[at] in pids]}
