"""What the zygote loads before it freezes its heap (runtime.launch.zygote.prepare)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[3]

# threading registers an at-fork hook (logging imports threading): run in every fork of the
# zygote, it copies ~400 KiB of the shared heap into each monitor, 100 containers' 40 MiB.
FORBIDDEN = ("threading", "logging", "subprocess")


def test_prepare_imports_nothing_with_an_at_fork_hook() -> None:
    code = ("import sys; from runtime.launch.zygote import prepare; prepare(); "
            f"print(' '.join(m for m in {FORBIDDEN!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=TOP, check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(TOP)})
    assert out.stdout.split() == []
