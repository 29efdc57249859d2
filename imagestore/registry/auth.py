"""Registry authentication: WWW-Authenticate challenges, bearer tokens per scope, basic auth.

Tokens are cached per (realm, service, scope) until shortly before they expire. Neither tokens
nor passwords are ever logged or put in an error message.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from imagestore.errors import AccessDenied, AuthenticationRequired, RegistryUnavailable
from imagestore.registry.credentials import Credentials
from imagestore.registry.transport import Request, Transport

_PARAM = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')
_MAX_TOKEN_RESPONSE = 1 << 20


@dataclass(frozen=True)
class Challenge:
    """A parsed WWW-Authenticate challenge: `scheme` is `bearer` or `basic`."""

    scheme: str
    params: dict[str, str]


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse `Bearer realm="...",service="...",scope="..."` (or Basic); None if absent."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for key, value in _PARAM.findall(rest):
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[key.lower()] = value
    return Challenge(scheme.lower(), params)


def basic_header(user: str, password: str) -> str:
    """The Authorization value for HTTP basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Authorizer:
    """Turns a challenge plus credentials into an Authorization header, caching tokens."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def header(self, challenge: Challenge | None, scope: str, creds: Credentials | None,
               insecure: bool, refresh: bool = False) -> str | None:
        """The Authorization header for a request in `scope`; None when none is needed.

        Raises:
            AuthenticationRequired: the token server rejected the credentials (401).
            AccessDenied: the token server refused access (403).
            RegistryUnavailable: the token server failed.
        """
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            pair = creds.basic() if creds else None
            return basic_header(*pair) if pair else None
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            return None
        if creds and creds.registry_token:
            return f"Bearer {creds.registry_token}"
        key = self._key(challenge, scope, creds)
        with self._lock:
            cached = self._tokens.get(key)
        if cached and not refresh and cached[1] > time.monotonic():
            return f"Bearer {cached[0]}"
        token, ttl = self._fetch_token(challenge, scope, creds, insecure)
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + max(ttl - 10, 1))
        return f"Bearer {token}"

    @staticmethod
    def _key(challenge: Challenge, scope: str, creds: Credentials | None
             ) -> tuple[str, str, str, str]:
        who = ""
        if creds and not creds.is_empty():
            # The cache is per identity too, without keeping the secret itself as the key.
            who = str(hash((creds.username, creds.password, creds.auth, creds.identity_token)))
        return (challenge.params["realm"], challenge.params.get("service", ""), scope, who)

    def _fetch_token(self, challenge: Challenge, scope: str, creds: Credentials | None,
                     insecure: bool) -> tuple[str, float]:
        realm = challenge.params["realm"]
        service = challenge.params.get("service", "")
        # `scope` may hold several, space-separated (a push that mounts from another repo).
        mine = scope.split()
        scopes = mine + [s for s in challenge.params.get("scope", "").split() if s not in mine]
        if creds and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "service": service, "scope": " ".join(scopes), "client_id": "crid"}
            req = Request("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"},
                          urlencode(form).encode())
        else:
            query = urlencode([("service", service)] + [("scope", s) for s in scopes])
            headers = {}
            pair = creds.basic() if creds else None
            if pair:
                headers["Authorization"] = basic_header(*pair)
            req = Request("GET", f"{realm}{'&' if '?' in realm else '?'}{query}", headers)
        return self._exchange(req, insecure, realm)

    def _exchange(self, req: Request, insecure: bool, realm: str) -> tuple[str, float]:
        resp = self._transport.send(req, insecure)
        try:
            body = resp.read(_MAX_TOKEN_RESPONSE + 1, decode_content=True)
        finally:
            resp.release_conn()
        where = realm.split("?")[0]
        if resp.status == 401:
            raise AuthenticationRequired(f"token server {where} requires valid credentials")
        if resp.status == 403:
            raise AccessDenied(f"token server {where} denied access")
        if resp.status != 200:
            raise RegistryUnavailable(f"token server {where} answered HTTP {resp.status}")
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
            ttl = float(doc.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryUnavailable(f"token server {where} sent no token")
        return token, ttl
