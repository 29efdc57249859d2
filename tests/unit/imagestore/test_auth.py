"""Auth challenges, token exchange and credentials, against a recording fake transport."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from imagestore.errors import AccessDenied, AuthenticationRequired
from imagestore.registry.auth import Authorizer, parse_challenge
from imagestore.registry.client import is_loopback
from imagestore.registry.credentials import Credentials, load_auth_file
from imagestore.registry.transport import Request, parse_retry_after

CHALLENGE = parse_challenge('Bearer realm="https://auth.example/token",service="reg",'
                            'scope="repository:a/b:pull"')


@dataclass
class _Response:
    status: int
    body: bytes

    def read(self, n: int, decode_content: bool = True) -> bytes:
        return self.body[:n]

    def release_conn(self) -> None:
        pass


@dataclass
class FakeTransport:
    """Answers token requests with `status`/`body`; records every request."""

    status: int = 200
    body: bytes = b'{"token": "t0k3n", "expires_in": 300}'
    sent: list[Request] = field(default_factory=list)

    def send(self, req: Request, insecure: bool = False) -> _Response:
        self.sent.append(req)
        return _Response(self.status, self.body)


def _authorizer(transport: FakeTransport) -> Authorizer:
    return Authorizer(transport)  # type: ignore[arg-type]


def test_parse_challenge() -> None:
    assert CHALLENGE is not None
    assert (CHALLENGE.scheme, CHALLENGE.params) == ("bearer", {
        "realm": "https://auth.example/token", "service": "reg", "scope": "repository:a/b:pull"})
    basic = parse_challenge('Basic realm="x, y"')
    assert basic is not None and basic.params == {"realm": "x, y"}
    assert parse_challenge(None) is None


def test_token_with_basic_credentials_is_cached_per_scope() -> None:
    t = FakeTransport()
    auth = _authorizer(t)
    creds = Credentials("user", "pa:ss")
    assert auth.header(CHALLENGE, "repository:a/b:pull", creds, False) == "Bearer t0k3n"
    assert auth.header(CHALLENGE, "repository:a/b:pull", creds, False) == "Bearer t0k3n"
    [req] = t.sent
    query = parse_qs(urlsplit(req.url).query)
    assert (req.method, query["service"], query["scope"]) == ("GET", ["reg"],
                                                             ["repository:a/b:pull"])
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"user:pa:ss").decode()
    auth.header(CHALLENGE, "repository:c/d:pull", creds, False)
    assert len(t.sent) == 2


def test_identity_token_uses_the_oauth2_refresh_grant() -> None:
    t = FakeTransport(body=b'{"access_token": "acc"}')
    header = _authorizer(t).header(CHALLENGE, "repository:a/b:pull",
                                   Credentials(identity_token="refresh-me"), False)
    assert header == "Bearer acc"
    form = parse_qs(t.sent[0].body.decode())  # type: ignore[union-attr]
    assert (t.sent[0].method, form["grant_type"], form["refresh_token"]) == (
        "POST", ["refresh_token"], ["refresh-me"])


def test_registry_token_and_basic_scheme() -> None:
    t = FakeTransport()
    auth = _authorizer(t)
    assert auth.header(CHALLENGE, "s", Credentials(registry_token="rt"), False) == "Bearer rt"
    basic = parse_challenge('Basic realm="r"')
    assert auth.header(basic, "s", Credentials(auth=base64.b64encode(b"u:p").decode()),
                       False) == "Basic " + base64.b64encode(b"u:p").decode()
    assert auth.header(basic, "s", None, False) is None
    assert t.sent == []


@pytest.mark.parametrize("status, error", [(401, AuthenticationRequired), (403, AccessDenied)])
def test_token_server_refusals_never_echo_secrets(status: int, error: type) -> None:
    with pytest.raises(error) as e:
        _authorizer(FakeTransport(status=status)).header(
            CHALLENGE, "s", Credentials("user", "hunter2-secret"), False)
    assert "hunter2-secret" not in str(e.value)
    assert "hunter2-secret" not in repr(Credentials("user", "hunter2-secret"))


def test_bad_auth_field() -> None:
    with pytest.raises(AuthenticationRequired, match="not base64"):
        Credentials(auth="!!!").basic()


def test_auth_file(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
        "reg.example:5000": {"username": "u", "password": "p"},
        "tok.example": {"identitytoken": "idt"}}}))
    hub = load_auth_file(path, "docker.io")
    assert hub is not None and hub.basic() == ("hub", "pw")
    assert load_auth_file(path, "reg.example:5000") == Credentials("u", "p")
    tok = load_auth_file(path, "tok.example")
    assert tok is not None and tok.identity_token == "idt"
    assert load_auth_file(path, "other.example") is None
    assert load_auth_file(tmp_path / "missing.json", "docker.io") is None
    (tmp_path / "bad.json").write_text("{")
    assert load_auth_file(tmp_path / "bad.json", "docker.io") is None


def test_retry_after_and_loopback() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert [is_loopback(h) for h in ("localhost:5000", "127.0.0.1", "127.3.2.1:80", "[::1]:5000",
                                     "::1", "10.0.0.1:5000", "example.com")] == [
        True, True, True, True, True, False, False]
