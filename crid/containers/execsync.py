"""ExecSync: run a command in a running container and collect its output and exit code.

The process gets pipes of ours for stdout/stderr (its monitor, forked by the zygote, is its
parent and reaps it). Output beyond the cap is read and dropped, so the process never blocks on
a full pipe and memory stays bounded. On timeout the process, its process group and every
descendant are killed and their reaping awaited, so nothing is left for the next probe to see.
"""

from __future__ import annotations

import json
import os
import select
import time
from typing import Any

from crid.containers.runtime_errors import runtime_errors
from crid.containers.seams import ExecResult
from crid.errors import DeadlineExceeded
from runtime.api import ExecRequest, Runtime, proctree

DRAIN_GRACE = 0.5  # output still in flight after the exit (children holding the pipe: cut)
REAP_TIMEOUT = 10.0


class _Collector:
    """stdout and stderr sharing one budget (the reply must fit one gRPC message)."""

    def __init__(self, limit: int) -> None:
        self.room = limit
        self.bufs = {1: bytearray(), 2: bytearray()}

    def add(self, stream: int, data: bytes) -> None:
        if self.room > 0:
            kept = data[:self.room]
            self.bufs[stream] += kept
            self.room -= len(kept)


def run_exec(rt: Runtime, cid: str, process: dict[str, Any], timeout: float,
             limit: int) -> ExecResult:
    """Runs `process` (an OCI process object) in container `cid`.

    Raises:
        FailedPrecondition: the container is not running.
        DeadlineExceeded: timeout (> 0) passed; the process and its children were killed and
        reaped.
        Internal: the runtime failed to start the process.
    """
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            # brief: no exit file (the record comes on the wait fd) and no throwaway spawner
            # child in the monitor: a good part of what an exec costs (make bench: exec_sync).
            with runtime_errors(f"exec in container {cid}"):
                created = rt.exec(cid, ExecRequest(process=process, stdio=(null, out_w, err_w),
                                                   wait_fd=True, brief=True))
        finally:
            os.close(out_w)
            os.close(err_w)
            os.close(null)
        assert created.wait_fd is not None
        try:
            return _collect(created.pid, created.wait_fd, out_r, err_r, timeout, limit, cid)
        finally:
            os.close(created.wait_fd)
    finally:
        os.close(out_r)
        os.close(err_r)


def _collect(pid: int, wait_fd: int, out_r: int, err_r: int, timeout: float, limit: int,
             cid: str) -> ExecResult:
    col = _Collector(limit)
    streams = {out_r: 1, err_r: 2}
    record = bytearray()
    exited_at: float | None = None
    deadline = time.monotonic() + timeout if timeout > 0 else None
    while streams or exited_at is None:
        now = time.monotonic()
        if exited_at is not None and now - exited_at > DRAIN_GRACE:
            break
        if exited_at is None and deadline is not None and now >= deadline:
            _kill_and_reap(pid, wait_fd)
            raise DeadlineExceeded(f"exec in container {cid} timed out after {timeout}s; "
                                   "the process and its children were killed")
        waits = list(streams) + ([wait_fd] if exited_at is None else [])
        left = 0.1 if deadline is None else max(0.0, min(deadline - now, 0.1))
        if exited_at is not None:
            left = max(0.0, DRAIN_GRACE - (now - exited_at))
        for fd in select.select(waits, [], [], left)[0]:
            data = os.read(fd, 65536)
            if fd == wait_fd:
                record += data
                if not data:
                    exited_at = time.monotonic()
            elif data:
                col.add(streams[fd], data)
            else:
                del streams[fd]
    return ExecResult(bytes(col.bufs[1]), bytes(col.bufs[2]), _exit_code(bytes(record)))


def _exit_code(record: bytes) -> int:
    try:
        return int(json.loads(record)["exit_code"])
    except (ValueError, KeyError, TypeError):
        return -1


def _kill_and_reap(pid: int, wait_fd: int) -> None:
    """Kill the process and everything it started, and return once all are reaped: the
    caller (cri-tools, a probe's next run) looks for them right after DEADLINE_EXCEEDED."""
    procs = proctree.kill_tree(pid)
    # The monitor reaps the process, then writes the exit record and closes the wait fd.
    deadline = time.monotonic() + REAP_TIMEOUT
    while time.monotonic() < deadline:
        if select.select([wait_fd], [], [], deadline - time.monotonic())[0]:
            if not os.read(wait_fd, 65536):
                break
    # Orphaned children are reaped by the container's init (its pid namespace's reaper).
    proctree.wait_gone(procs, max(0.0, deadline - time.monotonic()))
