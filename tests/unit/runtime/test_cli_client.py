"""The thin client's own logic: finding --root and the command, socket paths, start-up cost."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.cli import DEFAULT_ROOT
from runtime.cli.client import SOCKET_NAME, SUN_PATH_MAX, scan_globals, socket_path

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[3]


def test_scan_globals_finds_root_and_command() -> None:
    assert scan_globals(["run", "-b", "x", "id"]) == (DEFAULT_ROOT, "run")
    assert scan_globals(["--root", "/r", "--log", "/l", "--debug", "state", "x"]) == (
        "/r", "state")
    assert scan_globals(["--root=/r2", "--log-format", "json", "exec", "x", "--root", "no"]) == (
        "/r2", "exec")
    assert scan_globals(["--rootless", "false", "list"]) == (DEFAULT_ROOT, "list")
    assert scan_globals([]) == (DEFAULT_ROOT, "")
    assert scan_globals(["--root"]) == (DEFAULT_ROOT, "")


def test_long_socket_paths_go_through_proc(tmp_path: Path) -> None:
    path, dirfd = socket_path("/run/x")
    assert (path, dirfd) == (f"/run/x/{SOCKET_NAME}", None)
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    path, dirfd = socket_path(str(deep))
    assert dirfd is not None
    try:
        assert path == f"/proc/self/fd/{dirfd}/{SOCKET_NAME}" and len(path) <= SUN_PATH_MAX
    finally:
        os.close(dirfd)


def test_the_client_imports_only_builtins_and_socket() -> None:
    """Its start-up is the point: no os, no re, no json, no runtime library."""
    code = ("import sys; before = set(sys.modules); import runtime.cli.client; "
            "print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO)}, check=True).stdout
    assert out.strip() == "['_socket', 'runtime', 'runtime.cli', 'runtime.cli.client']"
