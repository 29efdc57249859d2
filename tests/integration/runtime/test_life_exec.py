"""Runtime.exec works out a container's exec preparation once (cgroups, compiled seccomp
filter) and every exec still lands in the container's cgroups under its filter."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from runtime.lifecycle import CreateRequest, ExecRequest, Runtime
from tests.integration.runtime.lifekit import (  # noqa: F401  (fixtures)
    runtime_fixture,
    write_bundle,
    zygote_fixture,
)

NO_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
PROBE = ("grep Seccomp: /proc/self/status; mkdir /tmp/d$$ 2>/dev/null; echo $?; "
         "cat /proc/self/cgroup")


def _exec(runtime: Runtime, cid: str, script: str) -> tuple[bytes, int]:
    r, w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        res = runtime.exec(cid, ExecRequest(process={"args": ["sh", "-c", script], "cwd": "/",
                                                     "env": ["PATH=/bin"]},
                                            stdio=(null, w, w), wait_fd=True, brief=True))
    finally:
        os.close(w)
        os.close(null)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    assert res.wait_fd is not None
    with os.fdopen(res.wait_fd, "rb") as f:
        return out, json.loads(f.read())["exit_code"]


def _cgroups(text: str) -> list[str]:
    return sorted(line for line in text.splitlines() if line.count(":") >= 2)


def test_every_exec_is_filtered_and_in_the_container_cgroups(runtime: Runtime,
                                                              tmp_path: Path) -> None:
    cid = f"crt-exs-{uuid.uuid4().hex[:8]}"
    cg = f"/{cid}"
    bundle = write_bundle(tmp_path / "b", ["sleep", "300"], linux__cgroupsPath=cg,
                          linux__seccomp=NO_MKDIR)
    runtime.create(CreateRequest(id=cid, bundle=bundle))
    try:
        runtime.start(cid)
        init = runtime.state(cid).pid
        with open(f"/proc/{init}/cgroup") as f:
            expected = _cgroups(f.read())
        assert any(cg in line for line in expected)
        for _ in range(2):  # the second exec uses what the first worked out
            out, code = _exec(runtime, cid, PROBE)
            lines = out.decode().splitlines()
            assert code == 0
            assert lines[0].split() == ["Seccomp:", "2"]
            assert lines[1] == "1"  # mkdir refused by the filter
            assert _cgroups("\n".join(lines[2:])) == expected
    finally:
        runtime.delete(cid, force=True)
    leftovers = [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{cid}")]
    assert leftovers == []
