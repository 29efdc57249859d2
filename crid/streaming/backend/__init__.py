"""The daemon's streaming backend: exec, attach and port-forward behind crid.streaming.protocol."""

from crid.streaming.backend.backend import BackendOptions, CridStreamingBackend
from crid.streaming.backend.seams import ExecLauncher, ExecTarget, StreamTargets
from crid.streaming.backend.targets import DaemonTargets

__all__ = ["BackendOptions", "CridStreamingBackend", "DaemonTargets", "ExecLauncher",
           "ExecTarget", "StreamTargets"]
