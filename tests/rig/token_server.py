"""A small Docker token server (distribution "token authentication specification") on loopback.

It answers `GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...]` with
`{"token", "access_token", "expires_in", "issued_at"}`; the token is a JWT (ES256) whose header
carries the signing cert in `x5c`, so docker-registry verifies it against its `rootcertbundle`
(the rig CA). Basic credentials, when sent, must match; anonymous callers get only what
`anonymous_actions` allows (pull, by default nothing). Each call is recorded in `requests`
so tests can assert on the scopes a client asked for.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.rig.tls import IssuedCert

TOKEN_TTL = 300


@dataclass(frozen=True)
class TokenPolicy:
    """Who may do what. `users` maps username → password; `anonymous_actions` are granted
    to callers without credentials (e.g. `("pull",)`)."""

    service: str
    issuer: str
    users: Mapping[str, str]
    anonymous_actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenRequest:
    """One request the token server answered (or refused)."""

    account: str | None
    scopes: tuple[str, ...]
    status: int


@dataclass
class TokenServer:
    """The running server; `url` is the realm to configure in the registry."""

    policy: TokenPolicy
    signer: IssuedCert
    requests: list[TokenRequest] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "token server not started"
        port = self._httpd.server_address[1]
        return f"http://127.0.0.1:{port}/token"

    def start(self) -> None:
        """Bind a free loopback port and serve in a daemon thread."""
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="crt-rig-token-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def grant(self, account: str | None, scopes: list[str]) -> list[dict[str, object]]:
        """The `access` claim for `scopes`: authenticated users get every requested action,
        anonymous callers only those in `anonymous_actions`."""
        access: list[dict[str, object]] = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            if account is None:
                actions = [a for a in actions if a in self.policy.anonymous_actions]
            access.append({"type": kind, "name": name, "actions": sorted(set(actions))})
        return access

    def issue(self, account: str | None, scopes: list[str]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.policy.issuer,
            "sub": account or "",
            "aud": self.policy.service,
            "exp": now + TOKEN_TTL,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": self.grant(account, scopes),
        }
        return sign_jwt(claims, self.signer)


def sign_jwt(claims: Mapping[str, object], signer: IssuedCert) -> str:
    """An ES256 JWT with the signer's DER cert in the `x5c` header."""
    der = signer.cert.public_bytes(serialization.Encoding.DER)
    header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    der_sig = signer.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der_sig)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS wants r||s, not DER
    return f"{signing_input}.{_b64(raw)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Handler(BaseHTTPRequestHandler):
    server_state: TokenServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        state = self.server_state
        query = parse_qs(urlsplit(self.path).query)
        scopes = query.get("scope", [])
        account, ok = self._credentials(state.policy)
        service = query.get("service", [state.policy.service])[0]
        if not ok or service != state.policy.service:
            state.requests.append(TokenRequest(account, tuple(scopes), 401))
            self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
            return
        token = state.issue(account, scopes)
        state.requests.append(TokenRequest(account, tuple(scopes), 200))
        self._reply(200, {
            "token": token, "access_token": token, "expires_in": TOKEN_TTL,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })

    def _credentials(self, policy: TokenPolicy) -> tuple[str | None, bool]:
        header = self.headers.get("Authorization", "")
        if not header:
            return None, True
        if not header.startswith("Basic "):
            return None, False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, False
        return user, policy.users.get(user) == password

    def _reply(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep test output clean; requests are recorded in server_state.requests
