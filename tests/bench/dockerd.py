"""Debian's dockerd as the peer of crid's Docker Engine API: roots, socket, bridge and cgroup
parent of its own under a temp dir, started and stopped by PID, nothing left behind."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.bench.cgroups import remove_cgroup_dirs

DOCKERD = "/usr/sbin/dockerd"
DOCKER_CLI = "/usr/bin/docker"
CGROUP_PARENT = "/crt-bench-dockerd"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Dockerd:
    socket: Path
    pid: int
    log: Path


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def running_dockerd() -> Iterator[Dockerd]:
    """dockerd with its own data root, exec root (and so its own managed containerd), socket,
    a bridge of its own (no iptables) and cgroup parent; stopped by its PID on exit."""
    # A short base: containerd's socket lives under the exec root (108-byte sun_path limit).
    base = Path(tempfile.mkdtemp(prefix="crtdk", dir="/tmp"))
    bridge = f"crtdk{secrets.token_hex(3)}"
    subnet = f"10.237.{secrets.randbelow(250)}"
    _ip("link", "add", bridge, "type", "bridge")
    proc: subprocess.Popen[bytes] | None = None
    try:
        _ip("addr", "add", f"{subnet}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        sock, log = base / "docker.sock", base / "dockerd.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [DOCKERD, "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
                 "-H", f"unix://{sock}", "--pidfile", str(base / "dockerd.pid"),
                 "--bridge", bridge, "--iptables=false", "--ip-masq=false",
                 "--userland-proxy=false", "--exec-opt", "native.cgroupdriver=cgroupfs",
                 "--cgroup-parent", CGROUP_PARENT, "--storage-driver", "overlay2"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_ready(proc, sock, log)
        yield Dockerd(sock, proc.pid, log)
    finally:
        if proc is not None:
            _stop(proc)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        remove_cgroup_dirs(CGROUP_PARENT)
        _unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen[bytes], sock: Path, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dockerd exited {proc.returncode}: {log.read_text()[-3000:]}")
        ok = subprocess.run([DOCKER_CLI, "-H", f"unix://{sock}", "version"],
                            capture_output=True).returncode == 0
        if ok:
            return
        time.sleep(0.2)
    raise RuntimeError(f"dockerd did not answer within {START_TIMEOUT}s: "
                       f"{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (dockerd stops its containers and its managed containerd), SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _unmount_under(base: Path) -> None:
    prefix = str(base) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if line.split()[4].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
