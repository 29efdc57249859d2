"""Start-up, ownership of the root, stale sockets, graceful stop, and bad configuration."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
from pathlib import Path

from crid.api import api_pb2 as pb
from tests.rig.daemon import TOP, crid_command, remove_test_network, start_crid


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(crid_command(*args), capture_output=True, text=True, cwd=TOP,
                          env=dict(os.environ, PYTHONPATH=str(TOP)), timeout=60)


def test_second_daemon_on_same_root_is_refused(tmp_path: Path) -> None:
    first = start_crid(tmp_path)
    try:
        other_sock = tmp_path / "other.sock"
        res = _run("--root", str(first.root), "--run-root", str(tmp_path / "run2"),
                   "--listen", str(other_sock), "--log-format", "json")
        assert res.returncode == 1
        assert f"pid {first.proc.pid}" in res.stderr and str(first.root) in res.stderr
        assert not other_sock.exists()
        first.runtime.Version(pb.VersionRequest())
    finally:
        assert first.stop() == 0


def test_stale_socket_is_replaced(tmp_path: Path) -> None:
    sock = tmp_path / "run" / "crid.sock"
    sock.parent.mkdir(parents=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock))
    s.close()  # a socket file nobody listens on, as a killed daemon leaves
    daemon = start_crid(tmp_path)
    assert daemon.stop() == 0


def test_sigterm_stops_gracefully_and_removes_socket(tmp_path: Path) -> None:
    daemon = start_crid(tmp_path)
    assert daemon.stop(signal.SIGTERM) == 0
    assert not daemon.socket.exists()
    assert '"stopped"' in daemon.log()


def test_restart_after_sigkill(tmp_path: Path) -> None:
    daemon = start_crid(tmp_path)
    daemon.runtime.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(
        runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(
            pod_cidr="10.9.0.0/16"))))
    daemon.stop(signal.SIGKILL)
    again = start_crid(tmp_path)
    try:
        info = again.runtime.Status(pb.StatusRequest(verbose=True)).info
        assert "10.9.0.0/16" in info["network"]
    finally:
        assert again.stop() == 0


def test_config_file_and_dropins_apply(tmp_path: Path) -> None:
    cfg = tmp_path / "etc" / "crid.toml"
    (cfg.parent / "crid.d").mkdir(parents=True)
    a, b = f"crtda{secrets.token_hex(2)}", f"crtdb{secrets.token_hex(2)}"
    cfg.write_text(f'cgroup_driver = "systemd"\n[network]\nbridge = "{a}"\n'
                   f'pod_cidr = "10.217.{secrets.randbelow(250)}.0/24"\n')
    (cfg.parent / "crid.d" / "10-net.toml").write_text(f'[network]\nbridge = "{b}"\n')
    daemon = start_crid(tmp_path, config=cfg)
    try:
        resp = daemon.runtime.RuntimeConfig(pb.RuntimeConfigRequest())
        assert resp.linux.cgroup_driver == pb.CgroupDriver.SYSTEMD
        info = daemon.runtime.Status(pb.StatusRequest(verbose=True)).info
        assert f'"bridge": "{b}"' in info["config"]
    finally:
        assert daemon.stop() == 0
        for bridge in (a, b):
            remove_test_network(bridge)


def test_bad_config_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "crid.toml"
    cfg.write_text("[streaming]\nport = 70000\n")
    res = _run("--config", str(cfg), "--root", str(tmp_path / "r"))
    assert res.returncode == 2
    assert str(cfg) in res.stderr and "streaming.port" in res.stderr


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    res = _run("--config", str(tmp_path / "absent.toml"), "config")
    assert res.returncode == 2 and "absent.toml" in res.stderr


def test_config_command_prints_effective_toml(tmp_path: Path) -> None:
    res = _run("--root", "/srv/crid", "config")
    assert res.returncode == 0
    assert 'root = "/srv/crid"' in res.stdout and "# persistent state" in res.stdout


def test_version_command() -> None:
    res = _run("version")
    assert res.returncode == 0 and res.stdout.startswith("crid 0.1.0")




def test_sigterm_delivered_to_a_worker_thread_still_stops(tmp_path: Path) -> None:
    """The kernel may hand a process-directed SIGTERM to any thread, not only the main one."""
    from runtime.linux import libc

    daemon = start_crid(tmp_path)
    try:
        pid = daemon.proc.pid
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
        assert tids, "crid runs worker threads"
        libc.tgkill(pid, tids[-1], signal.SIGTERM)
        assert daemon.proc.wait(timeout=10) == 0  # no second signal from stop() below
    finally:
        daemon.stop()
    assert '"stopped"' in daemon.log()
