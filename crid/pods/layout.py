"""Where a pod's volatile state lives: `<run_root>/pods/<id>/`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PodPaths:
    dir: Path

    @classmethod
    def of(cls, run_root: Path, pod_id: str) -> PodPaths:
        return cls(run_root / "pods" / pod_id)

    @property
    def ns_dir(self) -> Path:
        return self.dir / "ns"

    @property
    def shm(self) -> Path:
        return self.dir / "shm"

    @property
    def intent(self) -> Path:
        """What a RunPodSandbox has created so far (cgroup, infra), for crash cleanup."""
        return self.dir / "intent.json"

    def ns(self, kind: str) -> Path:
        return self.ns_dir / kind

    def write_intent(self, **facts: Any) -> None:
        current = self.read_intent()
        current.update(facts)
        write_volatile(self.intent, json.dumps(current).encode(), 0o600)

    def read_intent(self) -> dict[str, Any]:
        try:
            return json.loads(self.intent.read_text())
        except (OSError, ValueError):
            return {}


def write_volatile(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replaces path atomically (temp file + rename) without fsync: the run root is volatile
    (a tmpfs, gone on reboot), so only atomicity matters, not durability; a daemon crash keeps
    the page cache."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)
