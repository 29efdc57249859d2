"""The rig's token server: scopes honoured, credentials checked, JWT verifiable."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.rig.tls import CertificateAuthority
from tests.rig.token_server import TokenPolicy, TokenServer


def _b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    ca = CertificateAuthority(tmp_path)
    srv = TokenServer(TokenPolicy("svc", "iss", {"u": "p"}, ("pull",)), ca.issue("signer"))
    srv.start()
    yield srv, ca
    srv.stop()


def _get(srv: TokenServer, scope: str, auth: str | None) -> urllib3.BaseHTTPResponse:
    headers = urllib3.make_headers(basic_auth=auth) if auth else {}
    return urllib3.request("GET", f"{srv.url}?service=svc&scope={scope}", headers=headers)


def test_token_is_a_verifiable_es256_jwt(server) -> None:  # type: ignore[no-untyped-def]
    srv, ca = server
    resp = _get(srv, "repository:a/b:pull,push", "u:p")
    assert resp.status == 200
    token = json.loads(resp.data)["token"]
    head, body, sig = token.split(".")
    header = json.loads(_b64d(head))
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    leaf.verify_directly_issued_by(ca.cert)
    raw = _b64d(sig)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    leaf.public_key().verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    claims = json.loads(_b64d(body))
    assert (claims["iss"], claims["aud"], claims["sub"]) == ("iss", "svc", "u")
    assert claims["access"] == [{"type": "repository", "name": "a/b", "actions": ["pull", "push"]}]


def test_anonymous_gets_only_anonymous_actions(server) -> None:  # type: ignore[no-untyped-def]
    srv, _ = server
    token = json.loads(_get(srv, "repository:a:pull,push", None).data)["token"]
    claims = json.loads(_b64d(token.split(".")[1]))
    assert claims["access"] == [{"type": "repository", "name": "a", "actions": ["pull"]}]


def test_wrong_password_is_refused(server) -> None:  # type: ignore[no-untyped-def]
    srv, _ = server
    assert _get(srv, "repository:a:pull", "u:wrong").status == 401
    assert [r.status for r in srv.requests] == [401]
