"""Running ``crid-runtime`` in tests, and stopping the runtime servers it starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runtime.cli.client import LOCK_NAME, SOCKET_NAME

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "bin" / "crid-runtime"


def cli_env(**extra: str) -> dict[str, str]:
    """The test environment: this work tree's code; servers idle out soon if a test leaks one."""
    return {**os.environ, "PYTHONPATH": str(REPO), "CRID_RUNTIME_SERVER_IDLE": "20", **extra}


def cli(root: Path, *args: str, cwd: Path | None = None, detached: bool = False,
        env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed-style script. ``detached``: like runc, the container inherits the
    caller's stdio, so a container that outlives the command must not get the capture pipes."""
    out = subprocess.DEVNULL if detached else subprocess.PIPE
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), *args],
                          stdout=out, stderr=out, text=True, cwd=cwd or REPO,
                          stdin=subprocess.DEVNULL, timeout=timeout, env=env or cli_env())


def server_pid(root: Path) -> int | None:
    """The pid of the live runtime server of ``root`` (from its lock file), if any."""
    try:
        pid = int((root / LOCK_NAME).read_text())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")
        with open(f"/proc/{pid}/stat") as f:
            zombie = f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, ValueError):
        return None
    if zombie or b"runtime.cli.server" not in cmdline or str(root).encode() not in cmdline:
        return None
    return pid


def stop_server(root: Path, sig: int = signal.SIGTERM, timeout: float = 10) -> int | None:
    """Stop the server of ``root`` (if one runs); its pid."""
    pid = server_pid(root)
    if pid is None:
        return None
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while server_pid(root) == pid:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    return pid


def socket_of(root: Path) -> Path:
    return root / SOCKET_NAME
