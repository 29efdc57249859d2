"""Registry credentials: from a pull request (CRI AuthConfig) or a docker-style auth.json.

Secrets are never part of `repr` or of any error message.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

from imagestore.errors import AuthenticationRequired

_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True)
class Credentials:
    """What a client may present: username/password (or `auth`), or a token.

    `auth` is base64 `user:password` as in docker's config; `identity_token` is an OAuth2
    refresh token exchanged at the token realm; `registry_token` is a bearer token used as is.
    """

    username: str = ""
    password: str = field(default="", repr=False)
    auth: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)

    def basic(self) -> tuple[str, str] | None:
        """`(username, password)` if any, decoding `auth` when set.

        Raises:
            AuthenticationRequired: `auth` is not base64 of `user:password`.
        """
        if self.auth:
            try:
                text = base64.b64decode(self.auth, validate=True).decode()
                user, sep, password = text.partition(":")
            except (binascii.Error, UnicodeDecodeError):
                sep = ""
            if not sep:
                raise AuthenticationRequired("the `auth` credential is not base64 user:password")
            return user, password
        if self.username or self.password:
            return self.username, self.password
        return None

    def is_empty(self) -> bool:
        """Whether there is nothing to present."""
        return not (self.username or self.password or self.auth or self.identity_token
                    or self.registry_token)


def normalize_host(key: str) -> str:
    """`https://index.docker.io/v1/` → `docker.io`; `https://host:5000/x` → `host:5000`."""
    host = key.split("://", 1)[-1].split("/", 1)[0].lower()
    return "docker.io" if host in _HUB_ALIASES else host


def load_auth_file(path: Path | None, host: str) -> Credentials | None:
    """Credentials of `host` (`host[:port]`) in a docker config.json, None if absent.

    A missing or unreadable file means no credentials; a malformed one too (it is the
    operator's file, and a pull must not fail because of an unrelated entry).
    """
    if path is None:
        return None
    try:
        auths = json.loads(path.read_text()).get("auths", {})
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(auths, dict):
        return None
    want = normalize_host(host)
    for key, entry in auths.items():
        if isinstance(entry, dict) and normalize_host(str(key)) == want:
            return Credentials(
                username=str(entry.get("username", "")),
                password=str(entry.get("password", "")),
                auth=str(entry.get("auth", "")),
                identity_token=str(entry.get("identitytoken", "")),
                registry_token=str(entry.get("registrytoken", "")),
            )
    return None
