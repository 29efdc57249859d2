"""POST /build's query: what the CLI and docker-py send, and what is refused up front."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest

from crid.docker.build_query import parse_query
from crid.docker.errors import BadRequest, NotImplementedYet
from crid.docker.http import Request
from imagestore import Credentials


def _req(query: str, headers: list[tuple[str, str]] | None = None) -> Request:
    return Request("POST", "/build", urllib.parse.parse_qs(query, keep_blank_values=True),
                   headers or [], b"", "1.41")


def test_what_the_cli_sends() -> None:
    # Debian's docker 28 CLI with DOCKER_BUILDKIT=0, -t twice, --build-arg, --label, --target.
    q = parse_query(_req(
        "buildargs=%7B%22A%22%3A%221%22%2C%22B%22%3Anull%7D&cachefrom=%5B%5D&cgroupparent="
        "&cpuperiod=0&dockerfile=sub%2FDockerfile&labels=%7B%22k%22%3A%22v%22%7D&memory=0"
        "&networkmode=default&nocache=1&q=1&rm=1&shmsize=0&t=a%3A1&t=b&target=base"
        "&ulimits=null&version=1"))
    assert q.dockerfile == "sub/Dockerfile"
    assert q.tags == ("a:1", "b")
    assert q.build_args == {"A": "1", "B": None}
    assert q.labels == {"k": "v"}
    assert (q.target, q.no_cache, q.quiet, q.host_network) == ("base", True, True, False)


def test_registry_config_header_gives_credentials_per_registry() -> None:
    cfg = {"https://index.docker.io/v1/": {"username": "u", "password": "p"},
           "reg.example:5000": {"username": "x", "password": "y"}, "empty": {}}
    header = base64.urlsafe_b64encode(json.dumps(cfg).encode()).decode().rstrip("=")
    q = parse_query(_req("", [("x-registry-config", header)]))
    assert q.auth == {"index.docker.io": Credentials("u", "p"),
                      "reg.example:5000": Credentials("x", "y")}


@pytest.mark.parametrize(("query", "error", "text"), [
    ("version=2", BadRequest, "DOCKER_BUILDKIT=0"),
    ("remote=https://example.com/x.git", NotImplementedYet, "remote build contexts"),
    ("t=UPPER%3Acase", BadRequest, "invalid reference format"),
    ("t=a%40sha256%3A" + "0" * 64, BadRequest, "cannot hold a digest"),
    ("buildargs=%5B1%5D", BadRequest, "buildargs must be a JSON object"),
    ("labels=%7B%22a%22%3Anull%7D", BadRequest, "labels must be a JSON object"),
    ("buildargs=nope", BadRequest, "buildargs is not valid JSON"),
    ("networkmode=container%3Aabc", BadRequest, "not served for builds"),
    ("platform=windows%2Famd64", BadRequest, "crid builds for the host only"),
])
def test_refused_up_front(query: str, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        parse_query(_req(query))


def test_resource_limits_and_rm_reach_the_run_containers() -> None:
    q = parse_query(_req("memory=67108864&memswap=-1&cpushares=512&cpuquota=50000"
                         "&cpusetcpus=0-1&rm=0"))
    r = q.resources
    assert (r.memory_limit, r.memory_swap_limit, r.cpu_shares) == (64 << 20, 0, 512)
    assert (r.cpu_quota, r.cpu_period, r.cpuset_cpus) == (50000, 100000, "0-1")
    assert q.keep_containers
    assert not parse_query(_req("")).keep_containers  # rm defaults to true


@pytest.mark.parametrize("query", ["memory=1024", "memory=-5", "memory=67108864&memswap=1024",
                                   "cpuquota=10", "cpuperiod=5", "cpusetcpus=a-b",
                                   "memory=lots"])
def test_bad_resource_limits_are_refused(query: str) -> None:
    with pytest.raises(BadRequest):
        parse_query(_req(query))
