"""Where a pod's volatile state lives: `<run_root>/pods/<id>/`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.linux.atomic import write_atomic


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
        # The run root is volatile (gone on reboot): atomicity matters, durability does not,
        # and a daemon crash keeps the page cache.
        write_atomic(self.intent, json.dumps(current).encode(), 0o600, durable=False)

    def read_intent(self) -> dict[str, Any]:
        try:
            return json.loads(self.intent.read_text())
        except (OSError, ValueError):
            return {}

