from __future__ import annotations

import json

import pytest

from runtime.errors import HookError
from runtime.hooks import run_hook, run_hooks_best_effort
from runtime.spec.model import Hook


def test_hook_gets_state_args_and_env(tmp_path):
    out = tmp_path / "out"
    hook = Hook("/bin/sh", ("sh", "-c", f'cat > {out}; echo "$1 $X" >> {out}', "sh", "arg1"),
                ("X=env1",))
    run_hook(hook, {"id": "c1", "status": "created"})
    state, extra = out.read_text().rsplit("}", 1)
    assert json.loads(state + "}") == {"id": "c1", "status": "created"}
    assert extra.strip() == "arg1 env1"


def test_hook_failure_timeout_and_missing_binary():
    with pytest.raises(HookError, match=r"prestart hook /bin/sh: exit status 2: oops"):
        run_hook(Hook("/bin/sh", ("sh", "-c", "echo oops >&2; exit 2")), "{}", "prestart")
    with pytest.raises(HookError, match="timed out after 1s"):
        run_hook(Hook("/bin/sleep", ("sleep", "5"), (), 1), "{}")
    with pytest.raises(HookError, match="/nonexistent-hook"):
        run_hook(Hook("/nonexistent-hook"), "{}")


def test_best_effort_runs_all():
    errs = run_hooks_best_effort([Hook("/bin/false"), Hook("/bin/true"), Hook("/bin/false")], {})
    assert len(errs) == 2
