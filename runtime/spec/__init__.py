"""OCI runtime-spec: typed model and loader (re-exports only)."""

from runtime.spec.load import load_spec, parse_process, parse_spec
from runtime.spec.model import (
    Capabilities,
    ConsoleSize,
    CPUAffinity,
    Device,
    Hook,
    Hooks,
    IDMapping,
    IOPriority,
    Linux,
    Mount,
    Namespace,
    Personality,
    Process,
    Rlimit,
    Root,
    Scheduler,
    Spec,
    User,
)

__all__ = [
    "CPUAffinity", "Capabilities", "ConsoleSize", "Device", "Hook", "Hooks", "IDMapping",
    "IOPriority", "Linux", "Mount", "Namespace", "Personality", "Process", "Rlimit", "Root",
    "Scheduler", "Spec", "User", "load_spec", "parse_process", "parse_spec",
]
