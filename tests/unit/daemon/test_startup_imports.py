"""The serving daemon imports nothing a node does not use until it is asked for it: every
module loaded at start-up is resident memory for the daemon's whole life (issue 14's summed
PSS), so what only some requests need is imported by the first such request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# rich and pygments: structlog's pretty tracebacks, never rendered by crid (a dev venv has
# them through import-linter). The rest: the Docker door's build engine, commit, export, save,
# load and import, loaded by their first request (crid/docker/app.py).
NOT_AT_START = ("rich", "pygments", "dockerfile_parse", "crid.build.service",
                "crid.build.builder", "crid.build.instructions", "crid.docker.build",
                "crid.docker.build_steps", "crid.docker.commit", "crid.docker.export",
                "crid.docker.save", "crid.docker.load", "crid.docker.imports")


def _lazy(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in NOT_AT_START)


# The front door is built as the daemon builds it; what it is given is only what building
# its routes touches (it is not started: that needs the whole domain).
_CODE = """
import sys, types
from pathlib import Path
import crid.cli, crid.daemon
from crid.docker import DockerFrontDoor
from crid.events import EventBus

class Deps:
    root = Path(sys.argv[1])
    state_dir = root / "docker"
    networks = types.SimpleNamespace()
    events = EventBus()
    def __getattr__(self, name):
        return None

DockerFrontDoor(Deps(), Deps.root / "docker.sock")
print("\\n".join(m for m, v in sys.modules.items() if v is not None))
"""


def _loaded_at_start(tmp: Path) -> list[str]:
    out = subprocess.run([sys.executable, "-c", _CODE, str(tmp)], capture_output=True,
                         text=True, check=True)
    return out.stdout.split()


def test_serving_imports_no_module_it_loads_lazily(tmp_path: Path) -> None:
    loaded = _loaded_at_start(tmp_path)
    assert "crid.daemon" in loaded and "crid.docker.app" in loaded
    assert sorted(m for m in loaded if _lazy(m)) == []
