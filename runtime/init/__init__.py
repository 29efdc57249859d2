"""Container process set-up: spawn_init (create) and exec_in (exec). Re-exports only."""

from runtime.init.context import ExecContext, InitContext
from runtime.init.exec import exec_in
from runtime.init.spawn import spawn_init

__all__ = ["ExecContext", "InitContext", "exec_in", "spawn_init"]
