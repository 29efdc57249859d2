"""One thread that learns of container exits from inotify on the exit-file directory.

No container is polled: monitors write `<exits_dir>/<id>` atomically when their container
ends, the watcher wakes on the rename and hands the record to `on_exit(id, ExitInfo)`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from crid import logs
from crid.containers.runtime_adapter import exit_info
from crid.containers.seams import ExitInfo
from runtime.api import ExitWatcher, read_exit_file

log = logs.get("crid.containers.exits")


class ExitWatchThread:
    """Calls `on_exit` for every exit file that appears in `directory` (watching starts in
    the constructor, so exits during start-up reconciliation are not missed)."""

    def __init__(self, directory: Path, on_exit: Callable[[str, ExitInfo], object]) -> None:
        self._dir = directory
        self._on_exit = on_exit
        self._watcher = ExitWatcher(str(directory))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="exit-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                names = self._watcher.read(0.5)
            except OSError as e:  # the fd closed under us at shutdown
                if not self._stop.is_set():
                    log.error("exit watcher failed", error=str(e))
                return
            for name in names:
                self._deliver(name)

    def _deliver(self, cid: str) -> None:
        try:
            status = read_exit_file(str(self._dir / cid))
        except (OSError, ValueError) as e:
            log.warning("unreadable exit file", container=cid, error=str(e))
            return
        if status is None:
            return
        try:
            self._on_exit(cid, exit_info(status))
        except Exception as e:  # noqa: BLE001 - one bad record must not stop the watcher
            log.error("recording an exit failed", container=cid, error=str(e))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._watcher.close()
