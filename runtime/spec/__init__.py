"""OCI runtime-spec: typed model and loader (re-exports only)."""

from runtime.spec.load import load_spec, parse_process, parse_spec
from runtime.spec.model import (
    Capabilities,
    ConsoleSize,
    Device,
    Hook,
    Hooks,
    IDMapping,
    Linux,
    Mount,
    Namespace,
    Personality,
    Process,
    Rlimit,
    Root,
    Spec,
    User,
)

__all__ = [
    "Capabilities", "ConsoleSize", "Device", "Hook", "Hooks", "IDMapping", "Linux", "Mount",
    "Namespace", "Personality", "Process", "Rlimit", "Root", "Spec", "User", "load_spec",
    "parse_process", "parse_spec",
]
