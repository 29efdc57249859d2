"""Fds given to a container's process as 3, 4, ... (runc's --preserve-fds) through the
zygote, its monitors and the init: for create and for exec, brief or not."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from runtime.errors import RequestError
from runtime.lifecycle import CreateRequest, ExecRequest, Runtime
from runtime.requests import MAX_PRESERVED_FDS
from tests.integration.runtime.lifekit import (  # noqa: F401  (fixtures)
    PREFIX,
    runtime_fixture,
    write_bundle,
    zygote_fixture,
)

# Reads one line from each given fd, then lists what it has open (ls's own fd comes last).
READ_BOTH = "head -n1 <&3; head -n1 <&4; ls /proc/self/fd"


Finish = Callable[[int | None], tuple[list[str], int]]


@contextmanager
def _given() -> Iterator[tuple[tuple[int, int], tuple[int, int, int], Finish]]:
    """Two pipes holding "one" and "two" (their read ends are the fds to give), stdio whose
    output lands in a third pipe, and ``finish(wait_fd)``: the output's words and the exit
    code once the process has ended."""
    ends = [os.pipe() for _ in range(3)]
    null = os.open(os.devnull, os.O_RDONLY)
    os.write(ends[0][1], b"one\n")
    os.write(ends[1][1], b"two\n")
    mine = [ends[0][1], ends[1][1], ends[2][1]]  # closed by now, or by finish
    for fd in mine[:2]:
        os.close(fd)
    del mine[:2]

    def finish(wait_fd: int | None) -> tuple[list[str], int]:
        assert wait_fd is not None
        with os.fdopen(wait_fd, "rb") as f:
            code = json.loads(f.read())["exit_code"]
        os.close(mine.pop())  # the process's copies are closed: the output ends here
        with os.fdopen(ends[2][0], "rb", closefd=False) as f:
            return f.read().decode().split(), code

    try:
        yield (ends[0][0], ends[1][0]), (null, ends[2][1], ends[2][1]), finish
    finally:
        for fd in (ends[0][0], ends[1][0], ends[2][0], null, *mine):
            os.close(fd)


def test_a_created_process_gets_the_fds(runtime: Runtime, tmp_path: Path) -> None:
    cid = f"{PREFIX}pfc"
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", READ_BOTH])
    with _given() as (given, stdio, finish):
        # given in reverse: the order of the tuple, not of the fd numbers, decides
        created = runtime.create(CreateRequest(id=cid, bundle=bundle, stdio=stdio,
                                               preserve_fds=given[::-1], wait_fd=True))
        runtime.start(cid)
        out, code = finish(created.wait_fd)
    assert (out, code) == (["two", "one", "0", "1", "2", "3", "4", "5"], 0)
    runtime.delete(cid)


@pytest.mark.parametrize("brief", [True, False])
def test_an_exec_gets_the_fds(runtime: Runtime, tmp_path: Path, brief: bool) -> None:
    cid = f"{PREFIX}pfe"
    runtime.create(CreateRequest(id=cid, bundle=write_bundle(tmp_path / "b", ["sleep", "300"])))
    runtime.start(cid)
    with _given() as (given, stdio, finish):
        process = {"args": ["sh", "-c", READ_BOTH], "cwd": "/", "env": ["PATH=/bin"]}
        created = runtime.exec(cid, ExecRequest(process=process, stdio=stdio, wait_fd=True,
                                                brief=brief, preserve_fds=given))
        out, code = finish(created.wait_fd)
    assert (out, code) == (["one", "two", "0", "1", "2", "3", "4", "5"], 0)


def test_too_many_fds_are_refused_before_anything_is_made(runtime: Runtime,
                                                          tmp_path: Path) -> None:
    cid = f"{PREFIX}pfm"
    bundle = write_bundle(tmp_path / "b", ["true"])
    with pytest.raises(RequestError, match=f"at most {MAX_PRESERVED_FDS}"):
        runtime.create(CreateRequest(id=cid, bundle=bundle,
                                     preserve_fds=(0,) * (MAX_PRESERVED_FDS + 1)))
    assert runtime.store.ids() == []
