"""The serving daemon imports nothing a node does not use until it is asked for it: every
module loaded at start-up is resident memory for the daemon's whole life (issue 14's summed
PSS), so what only some requests need is imported by the first such request."""

from __future__ import annotations

import subprocess
import sys

# rich and pygments: structlog's pretty tracebacks, never rendered by crid (a dev venv has
# them through import-linter).
NOT_AT_START = ("rich", "pygments")


def _loaded_at_start() -> list[str]:
    code = ("import sys, crid.cli, crid.daemon; "
            "print('\\n'.join(m for m, v in sys.modules.items() if v is not None))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


def test_serving_imports_no_module_it_loads_lazily() -> None:
    loaded = _loaded_at_start()
    assert "crid.daemon" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in NOT_AT_START) == []
