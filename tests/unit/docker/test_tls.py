"""A TCP listener for the Docker API is refused unless TLS with client certificates is set."""

from __future__ import annotations

import pytest

from crid.docker.tls import TcpOptions, TlsConfigError


@pytest.mark.parametrize("opts", [
    TcpOptions("127.0.0.1:2376", "", "", ""),
    TcpOptions("127.0.0.1:2376", "s.pem", "s-key.pem", ""),
    TcpOptions("2376", "s.pem", "s-key.pem", "ca.pem"),
])
def test_tcp_without_tls_verify_is_refused(opts: TcpOptions) -> None:
    with pytest.raises(TlsConfigError):
        opts.check()


def test_complete_options_pass() -> None:
    TcpOptions("[::1]:2376", "s.pem", "s-key.pem", "ca.pem").check()
