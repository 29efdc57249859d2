"""The atomic file replacement every library shares (runtime.linux.atomic: the runtime's state,
the image store's records and blobs, crid's)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import pytest

import runtime.linux.atomic

IMPLEMENTATIONS = [runtime.linux.atomic]


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda m: m.__name__)
def atomic(request: pytest.FixtureRequest) -> ModuleType:
    return request.param


@pytest.mark.parametrize("durable", [True, False])
def test_replaces_the_whole_file_with_the_exact_mode(atomic: ModuleType, tmp_path: Path,
                                                     durable: bool) -> None:
    f = tmp_path / "state.json"
    old_umask = os.umask(0o077)  # the mode is exact: the umask does not narrow it
    try:
        atomic.write_atomic(f, b"old" * 100_000, durable=durable)
        assert (f.stat().st_mode & 0o777) == 0o644
        atomic.write_atomic(str(f), b"new", mode=0o640, durable=durable)
    finally:
        os.umask(old_umask)
    assert f.read_bytes() == b"new"
    assert (f.stat().st_mode & 0o777) == 0o640
    assert os.listdir(tmp_path) == ["state.json"]


def test_relative_path_in_the_current_directory(atomic: ModuleType, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    atomic.write_atomic("here", b"x")
    assert (tmp_path / "here").read_bytes() == b"x"
    assert os.listdir(tmp_path) == ["here"]


def test_a_failed_rename_leaves_the_target_and_no_temporary_file(atomic: ModuleType,
                                                                 tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep").write_text("k")
    with pytest.raises(OSError):
        atomic.write_atomic(target, b"data")  # rename(2) of a file onto a non-empty directory
    assert sorted(os.listdir(tmp_path)) == ["busy"]
    assert os.listdir(target) == ["keep"]


def test_a_failed_write_leaves_the_old_content_and_no_temporary_file(atomic: ModuleType,
                                                                    tmp_path: Path) -> None:
    f = tmp_path / "f"
    atomic.write_atomic(f, b"old")
    with pytest.raises(TypeError):
        atomic.write_atomic(f, "text is refused: bytes only")  # type: ignore[arg-type]
    assert f.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def test_a_missing_directory_is_an_error(atomic: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic.write_atomic(tmp_path / "absent" / "f", b"x")
    assert os.listdir(tmp_path) == []


def test_concurrent_writers_never_share_a_temporary_file(atomic: ModuleType,
                                                         tmp_path: Path) -> None:
    f = tmp_path / "shared"
    contents = [bytes([65 + i]) * 4096 for i in range(8)]

    def writer(data: bytes) -> None:
        for _ in range(25):
            atomic.write_atomic(f, data, durable=False)

    with ThreadPoolExecutor(len(contents)) as pool:  # map re-raises a thread's error here
        list(pool.map(writer, contents))
    assert f.read_bytes() in contents
    assert os.listdir(tmp_path) == ["shared"]


def test_fsync_dir(atomic: ModuleType, tmp_path: Path) -> None:
    atomic.fsync_dir(tmp_path)
    atomic.fsync_dir(str(tmp_path))
    with pytest.raises(NotADirectoryError):
        (tmp_path / "file").write_text("x")
        atomic.fsync_dir(tmp_path / "file")
