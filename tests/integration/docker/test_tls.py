"""The Docker API over TCP with TLS client certificates (dockerd's --tlsverify): the CLI with
a certificate the CA signed is served, hijacked sessions (run -i, exec) included; a client
without one, or speaking plain HTTP, is not."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.integration.docker.conftest import DockerRig

CERTS = Path("/tmp") / f"crt-docker-tls-{os.getpid()}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = _free_port()


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=CERTS)


def _make_certs() -> None:
    CERTS.mkdir(exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=crid test CA")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (CERTS / f"{name}.ext").write_text(ext + "\n")
        _openssl("req", *ec, "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "1",
                 "-extfile", f"{name}.ext")
    (CERTS / "cert.pem").write_bytes((CERTS / "client.pem").read_bytes())  # DOCKER_CERT_PATH
    (CERTS / "key.pem").write_bytes((CERTS / "client-key.pem").read_bytes())


@pytest.fixture
def docker_extra_config() -> str:
    _make_certs()
    return (f'tcp = "127.0.0.1:{PORT}"\ntls_cert = "{CERTS}/server.pem"\n'
            f'tls_key = "{CERTS}/server-key.pem"\ntls_ca = "{CERTS}/ca.pem"\n')


def _tcp_cli(rig: DockerRig, *args: str, verify: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(rig.env(), DOCKER_HOST=f"tcp://127.0.0.1:{PORT}")
    if verify:
        env.update(DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(CERTS))
    return subprocess.run(["/usr/bin/docker", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_tls_clients_with_certificates_are_served(docker_rig: DockerRig) -> None:
    rig = docker_rig
    rig.cli("pull", "-q", "busybox")
    version = _tcp_cli(rig, "version", "--format", "{{.Server.APIVersion}}")
    assert version.returncode == 0 and version.stdout.strip(), version.stderr
    run = _tcp_cli(rig, "run", "--rm", "-i", "busybox", "sh", "-c", "cat; exit 3")
    assert (run.returncode, run.stdout) == (3, ""), run.stderr
    run = subprocess.run(["/usr/bin/docker", "run", "--rm", "-i", "busybox", "cat"],
                         env=dict(rig.env(), DOCKER_HOST=f"tcp://127.0.0.1:{PORT}",
                                  DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(CERTS)),
                         input="through tls\n", capture_output=True, text=True, timeout=120)
    assert run.stdout == "through tls\n", run.stderr
    assert _tcp_cli(rig, "run", "-d", "--name", "tls", "busybox", "sleep", "60").returncode == 0
    exec_ = _tcp_cli(rig, "exec", "tls", "echo", "exec over tls")
    assert exec_.stdout == "exec over tls\n", exec_.stderr
    assert _tcp_cli(rig, "rm", "-f", "tls").returncode == 0


def test_clients_without_a_certificate_are_refused(docker_rig: DockerRig) -> None:
    no_cert = _tcp_cli(docker_rig, "--tls", "version", verify=False)
    assert no_cert.returncode != 0
    ctx = ssl.create_default_context(cafile=str(CERTS / "ca.pem"))
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        with socket.create_connection(("127.0.0.1", PORT), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            if not tls.recv(100):
                raise ConnectionResetError("closed")
    with socket.create_connection(("127.0.0.1", PORT), timeout=15) as raw:
        raw.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = raw.recv(100)
        except ConnectionResetError:
            answer = b""  # the TLS handshake failed: the daemon closed the connection
        assert not answer.startswith(b"HTTP/1.1 200")
    # the daemon keeps serving
    assert docker_rig.cli("version").returncode == 0
