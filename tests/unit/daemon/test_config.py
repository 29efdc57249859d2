from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from crid import config as c


def test_defaults_need_no_file(tmp_path: Path) -> None:
    cfg = c.load(None) if not c.DEFAULT_CONFIG_FILE.exists() else c.Config()
    assert cfg.root == "/var/lib/crid" and cfg.socket_path == "/run/crid/crid.sock"
    assert cfg.network.pod_cidr == "10.88.0.0/16" and cfg.streaming.idle_timeout == "4h"


def test_render_then_load_round_trips(tmp_path: Path) -> None:
    cfg = c.load(tmp_path / "none.toml" if False else None, {"root": "/x"})
    f = tmp_path / "crid.toml"
    f.write_text(c.render_toml(cfg))
    assert c.load(f) == cfg


def test_registry_tables(tmp_path: Path) -> None:
    f = tmp_path / "crid.toml"
    f.write_text('[images.registries."docker.io"]\nmirrors = ["http://127.0.0.1:5001"]\n'
                 '[images.registries."quay.io"]\ninsecure = true\n')
    cfg = c.load(f)
    assert cfg.images.registries["docker.io"].mirrors == ["http://127.0.0.1:5001"]
    assert cfg.images.registries["quay.io"].insecure is True
    assert tomllib.loads(c.render_toml(cfg))["images"]["registries"]["quay.io"] == {
        "mirrors": [], "insecure": True}


@pytest.mark.parametrize("text, problem", [
    ("bogus = 1", "bogus: unknown key"),
    ("[network]\nbridgee = 'x'", "network.bridgee: unknown key"),
    ("log_level = 3", "log_level: expected str"),
    ("log_level = 'loud'", "log_level: 'loud' is not one of"),
    ("[network]\npod_cidr = '10.0.0.1/8'", "network.pod_cidr"),
    ("[network]\npod_cidr_v6 = '10.0.0.0/8'", "is not an IPv6 network"),
    ("[network]\nbridge = 'a-very-long-bridge-name'", "network.bridge"),
    ("[streaming]\nidle_timeout = 'forever'", "streaming.idle_timeout: not a duration"),
    ("[images]\nparallel_downloads = 0", "images.parallel_downloads: must be greater"),
    ("[images]\npinned = 'x'", "images.pinned: expected list[str]"),
    ("[images.registries.'docker.io']\nmirrors = [1]", "mirrors: expected list[str]"),
    ("network = 3", "network: expected a table"),
    ("root = ", "not valid TOML"),
    ("[metrics]\nlisten = '9540'", "metrics.listen: '9540' is not host:port"),
    ("[metrics]\nlisten = 'localhost:9540'", "metrics.listen"),
    ("[metrics]\nlisten = '127.0.0.1:99999'", "is not host:port"),
    ("[tracing]\nendpoint = '127.0.0.1:4317'", "tracing.endpoint: '127.0.0.1:4317' is not an OTLP"),
    ("[tracing]\nendpoint = 'grpc://h:4317'", "is not an OTLP/gRPC endpoint"),
    ("[tracing]\nsampling_rate = 1.5", "tracing.sampling_rate: must be between 0.0 and 1.0"),
    ("[tracing]\nsampling_rate = '1'", "tracing.sampling_rate: expected float"),
])
def test_bad_values_name_file_and_key(tmp_path: Path, text: str, problem: str) -> None:
    f = tmp_path / "crid.toml"
    f.write_text(text)
    with pytest.raises(c.ConfigError) as e:
        c.load(f)
    assert str(f) in str(e.value) and problem in str(e.value)


def test_dropins_apply_in_lexical_order_and_flags_win(tmp_path: Path) -> None:
    f = tmp_path / "crid.toml"
    f.write_text("log_level = 'debug'\n")
    (tmp_path / "crid.d").mkdir()
    (tmp_path / "crid.d" / "20-b.toml").write_text("log_level = 'error'\n")
    (tmp_path / "crid.d" / "10-a.toml").write_text("log_level = 'warning'\nroot = '/a'\n")
    cfg = c.load(f, {"root": "/flag"})
    assert (cfg.log_level, cfg.root) == ("error", "/flag")


def test_bad_dropin_is_named(tmp_path: Path) -> None:
    f = tmp_path / "crid.toml"
    f.write_text("")
    (tmp_path / "crid.d").mkdir()
    bad = tmp_path / "crid.d" / "x.toml"
    bad.write_text("[streaming]\nport = -1\n")
    with pytest.raises(c.ConfigError, match=f"{bad}: streaming.port"):
        c.load(f)


@pytest.mark.parametrize("text, seconds", [("4h", 14400), ("1h30m", 5400), ("250ms", 0.25),
                                           ("45s", 45)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert c.parse_duration(text) == seconds


@pytest.mark.parametrize(("listen", "path"), [
    ("/run/x/crid.sock", "/run/x/crid.sock"),
    ("unix:///run/x/crid.sock", "/run/x/crid.sock"),
    ("", "/run/crid/crid.sock"),
])
def test_listen_takes_a_path_or_a_unix_url(listen: str, path: str) -> None:
    cfg = c.Config(listen=listen)
    assert cfg.socket_path == path


@pytest.mark.parametrize("text, parsed", [
    ("127.0.0.1:9540", ("127.0.0.1", 9540)), ("[::1]:0", ("::1", 0)),
    ("0.0.0.0:9090", ("0.0.0.0", 9090)),
])
def test_host_port(text: str, parsed: tuple[str, int]) -> None:
    assert c.split_host_port(text) == parsed


def test_metrics_are_off_and_loopback_by_default() -> None:
    assert (c.Config().metrics.enable, c.Config().metrics.listen) == (False, "127.0.0.1:9540")


def test_shipped_default_config_is_the_rendered_defaults() -> None:
    shipped = Path(__file__).resolve().parents[3] / "deploy/crid.toml"
    assert shipped.read_text() == c.render_toml(c.Config()), "run: crid config > deploy/crid.toml"


def test_tracing_is_off_and_an_integer_rate_is_a_fraction(tmp_path: Path) -> None:
    assert c.Config().tracing.enable is False
    f = tmp_path / "crid.toml"
    f.write_text("[tracing]\nenable = true\nsampling_rate = 0\n")
    cfg = c.load(f)
    assert (cfg.tracing.sampling_rate, type(cfg.tracing.sampling_rate)) == (0.0, float)
    assert c.load(_written(tmp_path, c.render_toml(cfg))) == cfg


def _written(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "again.toml"
    f.write_text(text)
    return f
