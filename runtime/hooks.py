"""OCI lifecycle hooks: run one with the container state on stdin (config.md, POSIX hooks).

Who calls which hook (runtime.md "Lifecycle"):
- createRuntime, prestart (deprecated), poststart, poststop: the runtime's caller (rt-life), in
  the runtime namespace;
- createContainer (before pivot_root, path resolved in the runtime namespace) and
  startContainer (after start, in the container): ``runtime.init``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from runtime.errors import HookError
from runtime.spec.model import Hook


def run_hook(hook: Hook, state: dict[str, Any] | str, kind: str = "hook") -> None:
    """Run hook with the OCI state JSON on stdin and wait for it (up to hook.timeout seconds).

    Raises:
        HookError: the binary could not be run, timed out, or exited non-zero / by a signal.
    """
    import subprocess  # here: most containers have no hooks, and the CLI would pay for it

    data = state if isinstance(state, str) else json.dumps(state)
    argv = list(hook.args) or [hook.path]
    env = dict(e.split("=", 1) for e in hook.env)
    try:
        res = subprocess.run(argv, executable=hook.path, env=env, input=data.encode(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             timeout=hook.timeout, close_fds=True)
    except subprocess.TimeoutExpired as e:
        raise HookError(f"{kind} hook {hook.path}: timed out after {hook.timeout}s") from e
    except OSError as e:
        raise HookError(f"{kind} hook {hook.path}: {e}") from e
    if res.returncode != 0:
        how = (f"killed by signal {-res.returncode}" if res.returncode < 0
               else f"exit status {res.returncode}")
        err = res.stderr.decode(errors="replace").strip()[-400:]
        raise HookError(f"{kind} hook {hook.path}: {how}" + (f": {err}" if err else ""))


def run_hooks(hooks: Iterable[Hook], state: dict[str, Any] | str, kind: str = "hook") -> None:
    """Run hooks in order; the first failure raises HookError and stops the rest."""
    for hook in hooks:
        run_hook(hook, state, kind)


def run_hooks_best_effort(hooks: Iterable[Hook], state: dict[str, Any] | str,
                          kind: str = "hook") -> list[HookError]:
    """Run every hook even if some fail (poststart/poststop: failures are only warnings)."""
    errors = []
    for hook in hooks:
        try:
            run_hook(hook, state, kind)
        except HookError as e:
            errors.append(e)
    return errors
