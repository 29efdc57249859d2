"""warm_up_migration is a no-op for the caller's cgroups (its effect on timing is measured by
tests/bench/runtime_bench.py, not asserted here)."""

from __future__ import annotations

import os

import pytest

from runtime.cgroups.warmup import _candidates, warm_up_migration

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _own() -> bytes:
    with open("/proc/self/cgroup", "rb") as f:
        return f.read()


def test_warm_up_changes_nothing() -> None:
    before = _own()
    warm_up_migration()
    assert _own() == before
    assert any(os.path.exists(p) for p in _candidates())

