"""Container state on disk (one directory per container under the runtime root) and the
status state machine.

``<root>/<id>/state.json`` holds a ``ContainerRecord`` written atomically; the status reported
to callers is derived from the live process, never trusted from the file: a pid only counts as
the container when its start time (``/proc/<pid>/stat`` field 22) equals the one recorded at
create, so a recycled pid reads as ``stopped``.
"""

from __future__ import annotations

import enum
import json
import os
import re
from pathlib import Path

from runtime.errors import ContainerExists, ContainerNotFound, InvalidState
from runtime.linux.atomic import write_atomic
from runtime.records import asdict, dataclass, field

# Patterns stay strings, compiled by re on first use (and cached there): compiling
# them at import would cost every CLI call.
_ID_RE = r"^[\w+.-]{1,1024}$"


class Status(enum.Enum):
    """runtime.md statuses plus runc's ``paused``; the transitions allowed from each."""

    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"

    @property
    def can_start(self) -> bool:
        return self is Status.CREATED

    @property
    def can_kill(self) -> bool:
        return self in (Status.CREATED, Status.RUNNING, Status.PAUSED)

    @property
    def can_delete(self) -> bool:
        """Without --force: only stopped (and created, which runc also deletes)."""
        return self in (Status.STOPPED, Status.CREATED, Status.CREATING)

    @property
    def can_exec(self) -> bool:
        return self is Status.RUNNING

    @property
    def can_pause(self) -> bool:
        return self is Status.RUNNING

    @property
    def can_resume(self) -> bool:
        return self is Status.PAUSED

    def require(self, allowed: bool, what: str, container_id: str) -> None:
        """Raise InvalidState naming the operation when ``allowed`` is false."""
        if not allowed:
            raise InvalidState(f"cannot {what} container {container_id}: it is {self.value}")


def validate_id(container_id: str) -> str:
    """The id itself when usable as a directory name; else raises ContainerNotFound."""
    if not re.match(_ID_RE, container_id) or container_id in (".", ".."):
        raise ContainerNotFound(f"invalid container id {container_id!r}")
    return container_id


@dataclass
class ContainerRecord:
    """What the runtime remembers about a container between invocations."""

    id: str
    bundle: str
    pid: int = 0
    pid_start: int = 0
    monitor_pid: int = 0
    monitor_start: int = 0
    created: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    rootfs: str = ""
    exec_fifo: str = ""
    exit_file: str = ""
    attach_socket: str = ""
    log_path: str = ""
    owner: str = ""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ContainerRecord:
        return cls(**json.loads(data))


class StateStore:
    """The runtime root: ``<root>/<id>/{state.json,config.json,exec.fifo,...}``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def dir(self, container_id: str) -> Path:
        return self.root / validate_id(container_id)

    def reserve(self, container_id: str) -> Path:
        """Create the container's directory; raises ContainerExists if it is there."""
        self.root.mkdir(mode=0o711, parents=True, exist_ok=True)
        d = self.dir(container_id)
        try:
            d.mkdir(mode=0o711)
        except FileExistsError as e:
            raise ContainerExists(f"container {container_id} already exists") from e
        return d

    def save(self, record: ContainerRecord) -> None:
        # Not durable (no fsyncs): the state describes processes, which a power loss or reboot
        # ends anyway; the root is a run directory (tmpfs on a normal host), as runc's is.
        write_atomic(str(self.dir(record.id) / "state.json"), record.to_json(), 0o600,
                     durable=False)

    def load(self, container_id: str) -> ContainerRecord | None:
        """The record, None while still being created. Raises ContainerNotFound."""
        d = self.dir(container_id)
        try:
            return ContainerRecord.from_json((d / "state.json").read_bytes())
        except FileNotFoundError:
            if d.is_dir():
                return None
            raise ContainerNotFound(f"container {container_id} does not exist") from None

    def ids(self) -> list[str]:
        try:
            return sorted(p.name for p in self.root.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []

    def remove(self, container_id: str) -> None:
        _remove_tree(str(self.dir(container_id)))


def _remove_tree(path: str) -> None:
    """``shutil.rmtree(path, ignore_errors=True)`` for a state directory (a few files, maybe a
    socket); shutil's import (bz2, lzma) would cost every CLI call."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                _remove_tree(e.path)
            else:
                os.unlink(e.path)
        except OSError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def process_start_time(pid: int) -> int | None:
    """Start time of a live (non-zombie) process in clock ticks, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def is_alive(pid: int, start: int) -> bool:
    """True when ``pid`` is still the process that had start time ``start``."""
    return pid > 0 and process_start_time(pid) == start
