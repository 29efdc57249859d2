"""Shared pytest set-up: tests are marked by the tier their directory names."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.rig.fixtures"]

_TIERS = {"unit": pytest.mark.unit, "integration": pytest.mark.integration}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier, mark in _TIERS.items():
            if tier in parts:
                item.add_marker(mark)
