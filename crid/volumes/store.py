"""Volumes on disk: `<root>/<name>/volume.json` (metadata) beside `<root>/<name>/_data` (what
containers mount), as Docker's local driver lays out /var/lib/docker/volumes.

Every change is one rename, so a daemon killed at any instant leaves a volume whole or absent:
a volume is prepared in a `.new-*` directory and renamed to its name (rename(2) refuses a
non-empty target, which also makes two concurrent creates of one name safe); removal renames
it to `.gone-*` first and deletes that afterwards. `reap()` on start clears what a crash left
of either.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crid.errors import AlreadyExists, InvalidArgument, NotFound
from runtime.linux.atomic import write_atomic

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
META = "volume.json"
DATA = "_data"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"  # what Docker 23+ marks anonymous volumes with
_NEW, _GONE = ".new-", ".gone-"


def check_volume_name(name: str) -> str:
    """The name, if Docker's local driver accepts it.

    Raises:
        InvalidArgument: not `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (at most 255 characters).
    """
    if not _NAME.match(name) or len(name) > 255:
        raise InvalidArgument(f'create {name[:100]}: "{name[:100]}" includes invalid characters '
                              'for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are '
                              "allowed. If you intended to pass a host directory, use "
                              "absolute path")
    return name


@dataclass(frozen=True)
class Volume:
    name: str
    mountpoint: Path  # the _data directory containers mount
    created_at: float  # unix seconds
    driver: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    def to_record(self) -> dict[str, Any]:
        return {"name": self.name, "created_at": self.created_at, "driver": self.driver,
                "labels": self.labels, "options": self.options}


class VolumeStore:
    """The volumes under `root`. `lock` is held by callers that must see the set of volumes
    and the set of their users as one (removing a volume no container is about to use)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.RLock()

    def create(self, name: str, labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None) -> Volume:
        """A new volume with an empty `_data`.

        Raises:
            InvalidArgument: a bad name; AlreadyExists: the name is taken.
        """
        check_volume_name(name)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        vol = Volume(name, self.root / name / DATA, time.time(), labels=dict(labels or {}),
                     options=dict(options or {}))
        tmp = self.root / f"{_NEW}{secrets.token_hex(8)}"
        try:
            (tmp / DATA).mkdir(parents=True, mode=0o755)
            write_atomic(tmp / META, json.dumps(vol.to_record()).encode(), mode=0o600)
            try:
                os.rename(tmp, self.root / name)
            except OSError as e:  # ENOTEMPTY / EEXIST: a volume of that name exists
                raise AlreadyExists(f"volume {name} already exists") from e
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _fsync_dir(self.root)
        return vol

    def mountpoint(self, name: str) -> Path:
        """Where the volume's data is (whether or not it exists)."""
        return self.root / name / DATA

    def ensure(self, name: str, labels: dict[str, str] | None = None) -> Volume:
        """The volume of that name, created (with `labels`) when there is none."""
        with self.lock:
            try:
                return self.get(name)
            except NotFound:
                return self.create(name, labels)

    def get(self, name: str) -> Volume:
        """Raises NotFound: "no such volume" (also for a name that cannot be a volume)."""
        if not _NAME.match(name):
            raise NotFound(f"get {name[:100]}: no such volume")
        try:
            rec = json.loads((self.root / name / META).read_bytes())
        except (OSError, ValueError) as e:
            raise NotFound(f"get {name}: no such volume") from e
        return Volume(name, self.root / name / DATA, float(rec.get("created_at", 0)),
                      rec.get("driver", "local"), dict(rec.get("labels") or {}),
                      dict(rec.get("options") or {}))

    def list(self) -> list[Volume]:
        out = []
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.listdir(self.root)):
                if not entry.startswith("."):
                    with contextlib.suppress(NotFound):
                        out.append(self.get(entry))
        return out

    def remove(self, name: str) -> None:
        """Removes the volume and its data (whether containers use it is the caller's
        question).

        Raises:
            NotFound: no such volume.
        """
        self.get(name)
        gone = self.root / f"{_GONE}{secrets.token_hex(8)}"
        try:
            os.rename(self.root / name, gone)
        except FileNotFoundError as e:
            raise NotFound(f"remove {name}: no such volume") from e
        _fsync_dir(self.root)
        shutil.rmtree(gone, ignore_errors=True)

    def size(self, name: str) -> int:
        """Bytes under the volume's data (for prune's SpaceReclaimed)."""
        total = 0
        for dirpath, _dirs, files in os.walk(self.root / name / DATA):
            for f in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, f)).st_size
        return total

    def reap(self) -> None:
        """Deletes what a crash left: half-made and half-removed volumes."""
        with contextlib.suppress(FileNotFoundError):
            for entry in os.listdir(self.root):
                if entry.startswith((_NEW, _GONE)):
                    shutil.rmtree(self.root / entry, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
