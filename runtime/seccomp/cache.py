"""Compiled filters kept per profile.

Compiling the default profile with libseccomp (three x86 arches) costs more than the rest of a
container's set-up, and the
containers of a node use a handful of profiles: a long-lived caller (crid's Runtime) compiles
each once and sends the bytes to the process that loads them (a fresh
fork, which could keep nothing).
"""

from __future__ import annotations

import _thread
import json
from collections import OrderedDict
from typing import Any

from runtime.seccomp.compiler import CompiledFilter
from runtime.seccomp.install import prepare_filter


class FilterCache:
    """``get(linux.seccomp)``: the compiled filter, compiled on the first request for an equal
    profile (key order does not matter). Holds the ``size`` most recently used; thread-safe."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._filters: OrderedDict[str, CompiledFilter] = OrderedDict()
        self._lock = _thread.allocate_lock()

    def get(self, seccomp: dict[str, Any]) -> CompiledFilter:
        """Raises SpecError (an invalid profile, naming the field) or SeccompError."""
        key = json.dumps(seccomp, sort_keys=True, separators=(",", ":"))
        with self._lock:
            found = self._filters.get(key)
            if found is not None:
                self._filters.move_to_end(key)
                return found
        compiled = prepare_filter(seccomp)  # outside the lock: equal results anyway
        with self._lock:
            self._filters[key] = compiled
            while len(self._filters) > self._size:
                self._filters.popitem(last=False)
        return compiled
