"""The embedded OCI runtime (runtime.lifecycle) behind the manager's ContainerRuntime port.

Every container's monitor writes its exit file into one directory (`exits_dir/<id>`), which
the daemon's exit watcher observes with inotify. Monitors are forked by the zygote: the gRPC
process never forks.
"""

from __future__ import annotations

import calendar
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crid.containers.runtime_errors import runtime_errors
from crid.containers.seams import ExecResult, ExitInfo
from crid.errors import FailedPrecondition
from runtime.api import (
    Config,
    ContainerNotFound,
    CreateRequest,
    ExitStatus,
    InvalidState,
    MonitorLauncher,
    OCIRuntimeError,
    Runtime,
    Status,
    read_exit_file,
    reopen_log,
)

# stdout + stderr of an ExecSync: 16 MiB less room for the reply's framing, so the reply
# fits the kubelet's 16 MiB message limit.
EXEC_OUTPUT_LIMIT = 16 * 1024 * 1024 - 16 * 1024


@dataclass(frozen=True)
class RuntimeOptions:
    root: Path  # runtime state: <run_root>/runtime
    exits_dir: Path  # one exit file per container: <run_root>/exits


def exit_info(status: ExitStatus) -> ExitInfo:
    """The manager's view of a monitor's exit record."""
    message = f"killed by signal {status.signal}" if status.signal else ""
    return ExitInfo(exit_code=status.exit_code, oom_killed=status.oom_killed,
                    finished_at=parse_rfc3339_nano(status.finished_at), message=message)


def parse_rfc3339_nano(text: str) -> int:
    """ns since the epoch of `YYYY-MM-DDTHH:MM:SS.fffffffffZ` (0 when unparsable)."""
    try:
        whole, _, frac = text.rstrip("Z").partition(".")
        secs = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        return secs * 1_000_000_000 + int((frac + "000000000")[:9])
    except ValueError:
        return 0


class EmbeddedRuntime:
    """ContainerRuntime over runtime.lifecycle.Runtime. Raises crid errors only."""

    def __init__(self, opts: RuntimeOptions, launcher: MonitorLauncher) -> None:
        opts.exits_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._o = opts
        self.rt = Runtime(opts.root, launcher=launcher)

    def exit_file(self, cid: str) -> Path:
        return self._o.exits_dir / cid

    def create(self, cid: str, bundle: Path, config: Config, log_path: str, stdin: bool,
               stdin_once: bool, tty: bool) -> int:
        self.exit_file(cid).unlink(missing_ok=True)
        req = CreateRequest(id=cid, bundle=bundle, config=config,
                            log_path=Path(log_path) if log_path else None,
                            exit_file=self.exit_file(cid), stdin=stdin, stdin_once=stdin_once)
        with runtime_errors(f"creating container {cid}"):
            return self.rt.create(req).pid

    def start(self, cid: str) -> None:
        with runtime_errors(f"starting container {cid}"):
            self.rt.start(cid)

    def kill(self, cid: str, sig: int) -> None:
        with runtime_errors(f"signalling container {cid}"):
            try:
                self.rt.kill(cid, sig)
            except InvalidState:
                return  # already stopped: nothing to signal

    def wait(self, cid: str, timeout: float) -> ExitInfo | None:
        with runtime_errors(f"waiting for container {cid}"):
            try:
                return exit_info(self.rt.wait(cid, timeout))
            except TimeoutError:
                return None
            except ContainerNotFound:
                return self.exit_status(cid)

    def exit_status(self, cid: str) -> ExitInfo | None:
        status = read_exit_file(str(self.exit_file(cid)))
        return exit_info(status) if status is not None else None

    def is_running(self, cid: str) -> bool:
        """Whether the container's process lives (False for unknown containers)."""
        try:
            return self.rt.state(cid).status in (Status.CREATED, Status.RUNNING, Status.PAUSED)
        except OCIRuntimeError:
            return False

    def monitors(self) -> set[tuple[int, int]]:
        """(pid, start time) of the monitor of every container the runtime has a record of."""
        found = set()
        for cid in self.rt.store.ids():
            try:
                rec = self.rt.store.load(cid)
            except OCIRuntimeError:
                continue
            if rec is not None and rec.monitor_pid:
                found.add((rec.monitor_pid, rec.monitor_start))
        return found

    def delete(self, cid: str, force: bool) -> None:
        with runtime_errors(f"deleting container {cid}"):
            try:
                self.rt.delete(cid, force)
            except ContainerNotFound:
                pass
        self.exit_file(cid).unlink(missing_ok=True)

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        with runtime_errors(f"updating resources of container {cid}"):
            self.rt.update(cid, resources)

    def pause(self, cid: str) -> None:
        with runtime_errors(f"pausing container {cid}"):
            self.rt.pause(cid)

    def resume(self, cid: str) -> None:
        with runtime_errors(f"resuming container {cid}"):
            self.rt.resume(cid)

    def is_paused(self, cid: str) -> bool:
        try:
            return self.rt.state(cid).status is Status.PAUSED
        except OCIRuntimeError:
            return False

    def pids(self, cid: str) -> list[int]:
        try:
            return self.rt.ps(cid)
        except OCIRuntimeError:
            return []

    def reopen_log(self, cid: str) -> None:
        with runtime_errors(f"reopening the log of container {cid}"):
            rec = self.rt.store.load(cid)
        if rec is None or not rec.attach_socket:
            raise FailedPrecondition(f"container {cid} has no monitor socket")
        try:
            reopen_log(rec.attach_socket)
        except OSError as e:
            raise FailedPrecondition(f"reopening the log of container {cid}: {e}") from e

    def exec_sync(self, cid: str, process: dict[str, Any], timeout: float) -> ExecResult:
        from crid.containers.execsync import run_exec

        return run_exec(self.rt, cid, process, timeout, EXEC_OUTPUT_LIMIT)


def exit_names(directory: Path) -> list[str]:
    """Container ids with a finished exit file in `directory`."""
    try:
        return sorted(n for n in os.listdir(directory) if not n.startswith("."))
    except FileNotFoundError:
        return []
