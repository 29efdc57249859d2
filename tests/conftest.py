"""Shared pytest set-up: tests are marked by the tier their directory names."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests run on a loaded 2-core machine beside kernel-heavy tests: wall-clock
# deadlines there measure the machine, not the code.
settings.register_profile("crid", deadline=None)
settings.load_profile("crid")

pytest_plugins = ["tests.rig.fixtures"]

# pytest keeps its temporary directories under one root per user and deletes all but the last
# three runs' at each start: two checkouts testing at once (work trees, a CI run beside a
# developer's) would delete each other's directories, mounts and sockets mid-test. A root of
# this checkout's own keeps them apart.
_CHECKOUT = hashlib.sha256(str(Path(__file__).resolve().parent.parent).encode()).hexdigest()[:8]
os.environ.setdefault("PYTEST_DEBUG_TEMPROOT",
                      str(Path(tempfile.gettempdir()) / f"crt{_CHECKOUT}"))
Path(os.environ["PYTEST_DEBUG_TEMPROOT"]).mkdir(mode=0o700, exist_ok=True)

_TIERS = {"unit": pytest.mark.unit, "integration": pytest.mark.integration}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier, mark in _TIERS.items():
            if tier in parts:
                item.add_marker(mark)
