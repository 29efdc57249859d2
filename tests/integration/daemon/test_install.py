"""`make install` into a DESTDIR staging tree: the files land where the unit and the docs say,
the installed commands run (the daemon too, from its own venv, announcing readiness), and
`make uninstall` takes them away again but keeps the configuration."""

from __future__ import annotations

import configparser
import os
import signal
import socket
import subprocess
from pathlib import Path

from crid.api import api_pb2 as pb
from tests.rig import daemon as rig
from tests.rig.daemon import TOP, CridProcess

PREFIX = "/usr/local"


def _make(target: str, destdir: Path) -> None:
    subprocess.run(["make", "-C", str(TOP), target, f"DESTDIR={destdir}", f"PREFIX={PREFIX}"],
                   check=True, capture_output=True, timeout=540)


def test_install_run_uninstall(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    _make("install", dest)
    bindir, unit = dest / "usr/local/bin", dest / "usr/local/lib/systemd/system/crid.service"
    assert sorted(p.name for p in bindir.iterdir()) == ["crid", "crid-runtime"]
    assert (dest / "etc/crid/crid.toml").read_text() == (TOP / "deploy/crid.toml").read_text()
    assert (dest / "usr/local/share/doc/crid/operating.md").exists()

    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.read_string(unit.read_text())
    assert service["Service"]["ExecStart"] == f"{PREFIX}/bin/crid"
    assert {k: service["Service"][k] for k in ("Type", "KillMode", "Delegate")} == \
        {"Type": "notify", "KillMode": "process", "Delegate": "yes"}
    assert service["Unit"]["Before"] == "kubelet.service"

    elsewhere = tmp_path / "cwd"  # not the checkout: the installed package must answer
    elsewhere.mkdir()
    out = _installed(bindir / "crid", "--version", cwd=elsewhere)
    assert out == "crid 0.1.0 (CRI v1)\n"
    assert "run_root = \"/run/crid\"" in _installed(bindir / "crid", "config", cwd=TOP)
    assert _installed(bindir / "crid-runtime", "--version", cwd=elsewhere).startswith(
        "crid-runtime version 0.1.0")
    _serve_installed(bindir / "crid", dest, tmp_path)

    (dest / "etc/crid/crid.toml").write_text("log_level = 'debug'\n")  # the operator's edit
    _make("install", dest)  # again, as an upgrade does
    assert (dest / "etc/crid/crid.toml").read_text() == "log_level = 'debug'\n"
    _make("uninstall", dest)
    assert not (dest / "usr/local/bin/crid").exists() and not unit.exists()
    assert not (dest / "usr/local/lib/crid").exists()
    assert (dest / "etc/crid/crid.toml").exists()


def _installed(command: Path, *args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(command), *args], check=True, capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=60).stdout


def _serve_installed(crid: Path, dest: Path, base: Path) -> None:
    """The installed daemon serves from its venv and says READY=1 as the unit expects."""
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(base / "notify.sock"))
    notify.settimeout(60)
    config, bridge = rig.test_network_config(base)
    sock = base / "run" / "crid.sock"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["NOTIFY_SOCKET"] = str(base / "notify.sock")
    log_path = base / "installed.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(crid), "--config", str(config), "--root", str(base / "root"),
             "--run-root", str(base / "run"), "--listen", str(sock), "--log-format", "json"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd="/")
    daemon = CridProcess(base / "root", base / "run", sock, proc, log_path, bridge)
    try:
        assert b"READY=1" in notify.recv(4096)
        assert daemon.runtime.Version(pb.VersionRequest()).runtime_name == "crid"
        venv = str(dest / "usr/local/lib/crid/venv/bin/python")
        kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        cmdlines = [Path(f"/proc/{k}/cmdline").read_bytes().split(b"\0")[0].decode()
                    for k in kids]
        assert venv in cmdlines  # the zygote runs from the installed venv
    finally:
        assert daemon.stop(signal.SIGTERM) == 0, daemon.log()
        notify.close()
