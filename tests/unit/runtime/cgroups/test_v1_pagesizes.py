"""Huge page sizes as the kernel lists them, and the check made where hugetlb is unmounted."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cgroups import v1
from runtime.cgroups.errors import CgroupError
from runtime.cgroups.resources import Resources


@pytest.fixture(name="pages")
def pages_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for n in ("hugepages-2048kB", "hugepages-1048576kB", "hugepages-64kB"):
        (tmp_path / n).mkdir()
    monkeypatch.setattr(v1, "HUGEPAGES", str(tmp_path))
    return tmp_path


def test_host_page_sizes_are_spelt_as_the_hugetlb_files(pages: Path) -> None:
    assert v1.host_page_sizes() == {"2MB", "1GB", "64KB"}


def test_a_page_size_the_host_lacks_is_refused(pages: Path) -> None:
    v1._check_page_sizes(Resources.from_oci({"hugepageLimits": [
        {"pageSize": "2MB", "limit": 1}, {"pageSize": "1GB", "limit": 1}]}))
    with pytest.raises(CgroupError, match="no 3MB huge pages"):
        v1._check_page_sizes(Resources.from_oci({"hugepageLimits": [
            {"pageSize": "3MB", "limit": 1}]}))
