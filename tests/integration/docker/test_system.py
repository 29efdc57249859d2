"""Slice (a): the socket, version negotiation, `docker version` and `docker info`."""

from __future__ import annotations

import json
import socket
import stat

from crid.docker.versions import API_VERSION, MIN_API_VERSION
from tests.integration.docker.conftest import DockerRig


def _raw(rig: DockerRig, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(rig.socket))
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_socket_is_root_and_group_only(docker_rig: DockerRig) -> None:
    st = docker_rig.socket.stat()
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_uid == 0


def test_ping_get_and_head_carry_the_api_version(docker_rig: DockerRig) -> None:
    got = _raw(docker_rig, b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert f"api-version: {API_VERSION}".encode() in head.lower()
    assert body == b"OK"
    got = _raw(docker_rig, b"HEAD /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b""


def test_version_prefix_too_new_is_refused(docker_rig: DockerRig) -> None:
    got = _raw(docker_rig, b"GET /v9.99/version HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(body)["message"].startswith("client version 9.99 is too new")


def test_unknown_path_is_404_json(docker_rig: DockerRig) -> None:
    got = _raw(docker_rig, b"GET /v1.41/nope HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404")
    assert json.loads(body) == {"message": "page not found"}


def test_docker_version_negotiates(docker_rig: DockerRig) -> None:
    out = json.loads(docker_rig.cli("version", "--format", "{{json .}}").stdout)
    assert out["Server"]["ApiVersion"] == API_VERSION
    assert out["Server"]["MinAPIVersion"] == MIN_API_VERSION
    assert out["Server"]["Os"] == "linux"
    assert out["Client"]["ApiVersion"] == "1.41"  # Debian's 20.10 client, at its maximum


def test_docker_info(docker_rig: DockerRig) -> None:
    out = json.loads(docker_rig.cli("info", "--format", "{{json .}}").stdout)
    assert out["OSType"] == "linux"
    assert out["Containers"] == 0
    assert out["DefaultRuntime"] == "crid"
    assert out["DockerRootDir"] == str(docker_rig.daemon.root)


def test_docker_py_version_and_info(docker_rig: DockerRig) -> None:
    client = docker_rig.client()
    try:
        assert client.ping() is True
        assert client.version()["ApiVersion"] == API_VERSION
        assert client.api.api_version == API_VERSION
        assert client.info()["Images"] == 0
    finally:
        client.close()
