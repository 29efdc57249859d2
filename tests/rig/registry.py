"""Debian's `docker-registry` (distribution 2.8) run by the test rig on a free loopback port.

`running_registry(options)` starts one in a temp dir (config, storage, htpasswd, certs), waits
until `/v2/` answers, yields a `Registry` describing how to reach it, then stops it by PID and
removes the temp dir. Variants: plain HTTP, htpasswd basic auth, TLS with a rig CA, token auth
with the rig's own token server, and a pull-through mirror of another rig registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.rig.tls import CertificateAuthority
from tests.rig.token_server import TokenPolicy, TokenServer

REGISTRY_BIN = "/usr/bin/docker-registry"
HTPASSWD_BIN = "/usr/bin/htpasswd"
START_TIMEOUT = 15.0
TEMP_PREFIX = "crt-rig-registry-"


class RegistryError(Exception):
    """The rig could not start or stop a registry."""


@dataclass(frozen=True)
class Registry:
    """How to reach a running rig registry.

    `auth` is "none", "basic" or "token"; `username`/`password` are the credentials it accepts
    (None for "none"); `ca_path` is the CA to trust for https (None for http);
    `token_realm` is the token server's URL for "token"; `upstream` is the mirrored registry.
    """

    host: str
    port: int
    url: str
    scheme: str
    auth: str = "none"
    username: str | None = None
    password: str | None = None
    ca_path: Path | None = None
    token_realm: str | None = None
    service: str | None = None
    upstream: Registry | None = None
    storage: Path | None = None
    pid: int | None = None

    @property
    def netloc(self) -> str:
        """`host:port`, the registry part of an image reference."""
        return f"{self.host}:{self.port}"

    def ref(self, repository: str, tag_or_digest: str = "latest") -> str:
        """An image reference into this registry: `host:port/repo:tag` or `...@sha256:...`."""
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"{self.netloc}/{repository}{sep}{tag_or_digest}"


@dataclass(frozen=True)
class RegistryOptions:
    """What kind of registry to start.

    auth: "none", "basic" (htpasswd, bcrypt) or "token" (rig token server, JWTs signed by a
    CA-issued key); tls: serve https with a cert from `ca` (one is created when None);
    upstream: make it a pull-through mirror of that registry; anonymous_actions: what token
    auth grants without credentials.
    """

    auth: str = "none"
    tls: bool = False
    username: str = "crt-rig-user"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    ca: CertificateAuthority | None = None
    upstream: Registry | None = None
    anonymous_actions: tuple[str, ...] = ()
    delete_enabled: bool = True


@contextlib.contextmanager
def running_registry(options: RegistryOptions | None = None) -> Iterator[Registry]:
    """Start a registry as described by `options`; stop it and remove its files on exit.

    Raises:
        RegistryError: the binary is missing, or the registry did not answer in time.
    """
    options = options or RegistryOptions()
    if options.auth not in ("none", "basic", "token"):
        raise RegistryError(f"unknown registry auth kind {options.auth!r}")
    if options.upstream is not None and options.upstream.auth == "basic":
        # distribution 2.8's proxy only hands credentials to bearer-token realms it discovers
        # on the upstream's /v2/ challenge; a basic-auth upstream would answer every pull 404.
        raise RegistryError("docker-registry cannot mirror a basic-auth upstream; use token auth")
    if not os.access(REGISTRY_BIN, os.X_OK):
        raise RegistryError(f"{REGISTRY_BIN} not found: install Debian's docker-registry")
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        ca = options.ca
        if ca is None and (options.tls or options.auth == "token"):
            ca = CertificateAuthority(workdir / "ca")
        token_server = _start_token_server(options, ca, stack) if options.auth == "token" else None
        yield stack.enter_context(_serve(options, workdir, ca, token_server))


def _start_token_server(
    options: RegistryOptions, ca: CertificateAuthority | None, stack: contextlib.ExitStack
) -> TokenServer:
    assert ca is not None
    policy = TokenPolicy(
        service="crt-rig-registry",
        issuer="crt-rig-token-issuer",
        users={options.username: options.password},
        anonymous_actions=options.anonymous_actions,
    )
    server = TokenServer(policy, ca.issue(f"token-signer-{secrets.token_hex(4)}"))
    server.start()
    stack.callback(server.stop)
    return server


@contextlib.contextmanager
def _serve(
    options: RegistryOptions,
    workdir: Path,
    ca: CertificateAuthority | None,
    token_server: TokenServer | None,
) -> Iterator[Registry]:
    # The port is chosen by binding :0 and closing; another process may grab it before the
    # registry binds, so a start that dies early is retried on a new port.
    for _attempt in range(5):
        port = _free_port()
        config = _config(options, workdir, port, ca, token_server)
        config_path = workdir / "config.yml"
        config_path.write_text(json.dumps(config, indent=2))  # JSON is valid YAML
        registry = _describe(options, port, ca, token_server, workdir)
        proc = _spawn(config_path, workdir, options)
        try:
            if _wait_ready(registry, proc):
                yield _with_pid(registry, proc.pid)
                return
        finally:
            _stop(proc)
    log = (workdir / "registry.log").read_text(errors="replace")[-2000:]
    raise RegistryError(f"docker-registry did not start on 127.0.0.1; log tail:\n{log}")


def _with_pid(registry: Registry, pid: int) -> Registry:
    return Registry(**{**registry.__dict__, "pid": pid})


def _describe(
    options: RegistryOptions,
    port: int,
    ca: CertificateAuthority | None,
    token_server: TokenServer | None,
    workdir: Path,
) -> Registry:
    scheme = "https" if options.tls else "http"
    with_creds = options.auth != "none"
    return Registry(
        host="127.0.0.1",
        port=port,
        url=f"{scheme}://127.0.0.1:{port}",
        scheme=scheme,
        auth=options.auth,
        username=options.username if with_creds else None,
        password=options.password if with_creds else None,
        ca_path=ca.cert_path if (ca is not None and options.tls) else None,
        token_realm=token_server.url if token_server else None,
        service=token_server.policy.service if token_server else None,
        upstream=options.upstream,
        storage=workdir / "storage",
    )


def _config(
    options: RegistryOptions,
    workdir: Path,
    port: int,
    ca: CertificateAuthority | None,
    token_server: TokenServer | None,
) -> dict[str, object]:
    http: dict[str, object] = {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)}
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(workdir / "storage")},
            "delete": {"enabled": options.delete_enabled},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": http,
    }
    if options.tls:
        assert ca is not None
        leaf = ca.issue(f"registry-{port}")
        http["tls"] = {"certificate": str(leaf.cert_path), "key": str(leaf.key_path)}
    if options.auth == "basic":
        config["auth"] = {"htpasswd": {"realm": "crt-rig", "path": _htpasswd(options, workdir)}}
    elif options.auth == "token":
        assert ca is not None and token_server is not None
        config["auth"] = {"token": {
            "realm": token_server.url,
            "service": token_server.policy.service,
            "issuer": token_server.policy.issuer,
            "rootcertbundle": str(ca.cert_path),
        }}
    if options.upstream is not None:
        proxy: dict[str, object] = {"remoteurl": options.upstream.url}
        if options.upstream.username:
            proxy |= {"username": options.upstream.username,
                      "password": options.upstream.password}
        config["proxy"] = proxy
    return config


def _htpasswd(options: RegistryOptions, workdir: Path) -> str:
    path = workdir / "htpasswd"
    try:
        out = subprocess.run(
            [HTPASSWD_BIN, "-Bbn", options.username, options.password],
            check=True, capture_output=True, text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise RegistryError(f"creating htpasswd file with {HTPASSWD_BIN}: {err}") from err
    path.write_text(out.strip() + "\n")
    return str(path)


def _spawn(config_path: Path, workdir: Path, options: RegistryOptions) -> subprocess.Popen[bytes]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir)}
    upstream = options.upstream
    if upstream is not None and upstream.ca_path is not None:
        env["SSL_CERT_FILE"] = str(upstream.ca_path)  # the mirror must trust its upstream
    log = open(workdir / "registry.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [REGISTRY_BIN, "serve", str(config_path)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=workdir, start_new_session=True,
        )
    finally:
        log.close()


def _wait_ready(registry: Registry, proc: subprocess.Popen[bytes]) -> bool:
    """True once `/v2/` answers (200, or 401 when auth is on); False if the process died."""
    context = ssl.create_default_context(cafile=str(registry.ca_path)) if registry.ca_path else None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{registry.url}/v2/", timeout=1, context=context):
                return True
        except urllib.error.HTTPError as err:
            if err.code == 401:
                return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise RegistryError(f"docker-registry at {registry.url} did not answer /v2/ in time")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, then SIGKILL after a grace period; always reaps."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
