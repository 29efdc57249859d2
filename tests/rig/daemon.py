"""A crid daemon in a temporary root, driven over its real unix socket."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from crid.api import api_pb2_grpc
from crid.config import socket_file

TOP = Path(__file__).resolve().parents[2]


@dataclass
class CridProcess:
    """A running `crid` with its directories and CRI stubs bound to its socket."""

    root: Path
    run_root: Path
    socket: Path
    proc: subprocess.Popen
    log_path: Path
    bridge: str | None = None  # a test bridge of the rig's own, removed by stop()
    channel: grpc.Channel = field(init=False)
    runtime: api_pb2_grpc.RuntimeServiceStub = field(init=False)
    images: api_pb2_grpc.ImageServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self.channel = grpc.insecure_channel(f"unix://{self.socket}")
        self.runtime = api_pb2_grpc.RuntimeServiceStub(self.channel)
        self.images = api_pb2_grpc.ImageServiceStub(self.channel)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Stops the daemon (by its PID) and returns its exit status."""
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGUSR1)  # stacks into the log, for the failure
                time.sleep(1)
                self.proc.kill()
                self.proc.wait()
                print(f"crid did not stop within {timeout}s; its log:\n{self.log()[-20000:]}")
        if self.bridge:
            remove_test_network(self.bridge)
        return self.proc.returncode


def crid_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "crid", *args]


def remove_test_network(bridge: str) -> None:
    """Deletes a test bridge and its nft table (the daemon names it crid_<bridge>)."""
    subprocess.run(["ip", "link", "del", bridge], capture_output=True)
    subprocess.run(["nft", "delete", "table", "inet", f"crid_{bridge}"], capture_output=True)


def test_network_config(base: Path) -> tuple[Path, str]:
    """A config with a bridge and pod CIDR of the test's own (never crid0 / 10.88.0.0/16)."""
    bridge = f"crtd{secrets.token_hex(3)}"
    cfg = base / "crid-test.toml"
    cfg.write_text(f'[network]\nmode = "builtin"\nbridge = "{bridge}"\n'
                   f'pod_cidr = "10.216.{secrets.randbelow(250)}.0/24"\n'
                   f'cni_conf_dir = "{base}/cni"\n')
    return cfg, bridge


def start_crid(base: Path, *extra: str, config: Path | None = None, timeout: float = 20,
               env: dict[str, str] | None = None, new_session: bool = False,
               listen: str | None = None, wait: bool = True,
               log_level: str | None = "debug") -> CridProcess:
    """Starts crid with root, run root and socket under `base`; waits until it answers.

    Without `config`, crid gets a test network of its own (bridge, CIDR), removed by stop().
    `env` adds variables; `new_session` gives it a session and process group of its own (as a
    shell gives a foreground job: a test can then signal the whole group, as Ctrl-C does).
    `listen` is the --listen value (default: the path <base>/run/crid.sock). With `wait`
    false it returns at once, before crid answers. `log_level` None passes no --log-level
    (the config file's level applies, and a reload can change it).
    """
    bridge = None
    if config is None:
        config, bridge = test_network_config(base)
    root, run_root = base / "root", base / "run"
    sock = Path(socket_file(listen)) if listen else run_root / "crid.sock"
    log_path = base / f"crid-{time.monotonic_ns()}.log"
    args = ["--root", str(root), "--run-root", str(run_root), "--listen", listen or str(sock),
            *(["--log-level", log_level] if log_level else []), "--log-format", "json", *extra]
    if config is not None:
        args = ["--config", str(config), *args]
    full_env = dict(os.environ, PYTHONPATH=str(TOP), **(env or {}))
    with log_path.open("wb") as log:
        proc = subprocess.Popen(crid_command(*args), stdout=log, stderr=subprocess.STDOUT,
                                env=full_env, cwd=TOP, start_new_session=new_session)
    daemon = CridProcess(root, run_root, sock, proc, log_path, bridge)
    if wait:
        _wait_ready(daemon, timeout)
    return daemon


def _wait_ready(daemon: CridProcess, timeout: float) -> None:
    from crid.api import api_pb2

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.proc.poll() is not None:
            raise RuntimeError(f"crid exited with {daemon.proc.returncode}:\n{daemon.log()}")
        if daemon.socket.exists():
            try:
                daemon.runtime.Version(api_pb2.VersionRequest(), timeout=2)
                return
            except grpc.RpcError:
                pass
        time.sleep(0.05)
    daemon.stop(signal.SIGKILL)
    raise RuntimeError(f"crid did not answer within {timeout}s:\n{daemon.log()}")
