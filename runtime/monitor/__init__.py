"""Per-container monitor (conmon's job): stdio, CRI log, exit file, attach socket."""

from runtime.monitor.attach import AttachClient, reopen_log
from runtime.monitor.exitfile import ExitStatus, read_exit_file
from runtime.monitor.loop import Monitor
from runtime.monitor.options import ChildSpawner, MonitorOptions
from runtime.monitor.stdio import ChildStdio

__all__ = ["AttachClient", "ChildSpawner", "ChildStdio", "ExitStatus", "Monitor",
           "MonitorOptions", "read_exit_file", "reopen_log"]
