"""Shared pytest set-up: tests are marked by the tier their directory names."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# Property tests run on a loaded 2-core machine beside kernel-heavy tests: wall-clock
# deadlines there measure the machine, not the code.
settings.register_profile("crid", deadline=None)
settings.load_profile("crid")

pytest_plugins = ["tests.rig.fixtures"]

_TIERS = {"unit": pytest.mark.unit, "integration": pytest.mark.integration}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier, mark in _TIERS.items():
            if tier in parts:
                item.add_marker(mark)
