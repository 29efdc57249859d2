"""The daemon's streaming backend: exec, attach and port-forward behind crid.streaming."""

from crid.streaming_backend.backend import BackendOptions, CridStreamingBackend
from crid.streaming_backend.ports import ExecLauncher, ExecTarget, StreamTargets
from crid.streaming_backend.targets import DaemonTargets

__all__ = ["BackendOptions", "CridStreamingBackend", "DaemonTargets", "ExecLauncher",
           "ExecTarget", "StreamTargets"]
