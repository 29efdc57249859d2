"""Runtime-side hooks run at their lifecycle points with the state on stdin."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runtime.errors import HookError
from runtime.lifecycle import CreateRequest, Runtime
from tests.integration.runtime.lifekit import (  # noqa: F401  (fixtures)
    PREFIX,
    runtime_fixture,
    write_bundle,
    zygote_fixture,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def hook(out: Path, name: str) -> dict:
    return {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}/{name}.json"]}


def test_hooks_order_and_state(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "hooks"
    out = tmp_path / "out"
    out.mkdir()
    hooks = {k: [hook(out, k)] for k in ("prestart", "createRuntime", "poststart", "poststop")}
    bundle = write_bundle(tmp_path / "b", ["sleep", "300"], hooks=hooks)
    created = runtime.create(CreateRequest(id=cid, bundle=bundle))
    for name in ("prestart", "createRuntime"):
        state = json.loads((out / f"{name}.json").read_text())
        assert (state["id"], state["status"], state["pid"]) == (cid, "creating", created.pid)
        assert state["bundle"] == str(bundle)
    assert not (out / "poststart.json").exists()
    runtime.start(cid)
    assert json.loads((out / "poststart.json").read_text())["status"] == "running"
    runtime.kill(cid, 9)
    runtime.wait(cid, 10)
    runtime.delete(cid)
    assert json.loads((out / "poststop.json").read_text())["status"] == "stopped"


def test_failing_create_hook_aborts_create(runtime: Runtime, tmp_path: Path) -> None:
    hooks = {"createRuntime": [{"path": "/bin/false"}]}
    bundle = write_bundle(tmp_path / "b", ["true"], hooks=hooks)
    with pytest.raises(HookError, match="createRuntime"):
        runtime.create(CreateRequest(id=PREFIX + "badhook", bundle=bundle))
    assert runtime.store.ids() == []


def test_create_container_hook_runs_placed(runtime: Runtime, tmp_path: Path) -> None:
    """The init builds its rootfs while it is being placed in its cgroups, but waits for the
    placement before the createContainer hooks (which may look at the cgroups)."""
    cid = PREFIX + "cchook"
    out = tmp_path / "out"
    out.mkdir()
    # a slow prestart hook: the placement ("placed") ends after it
    hooks = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"sleep 0.3; : > {out}/pre"]}],
             "createContainer": [{"path": "/bin/sh", "args": [
                 "sh", "-c", f"cat /proc/self/cgroup > {out}/cg; ls {out} > {out}/seen"]}]}
    bundle = write_bundle(tmp_path / "b", ["true"], hooks=hooks)
    runtime.create(CreateRequest(id=cid, bundle=bundle))
    assert "pre" in (out / "seen").read_text().split()
    lines = (out / "cg").read_text().splitlines()
    assert lines and all(line.endswith("/" + cid) for line in lines), lines
    runtime.delete(cid, force=True)
