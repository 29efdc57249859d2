"""OCI runtime-spec: typed model and loader (re-exports only)."""

from runtime.spec.load import config_from_doc, load_config, load_spec, parse_process, parse_spec
from runtime.spec.model import (
    Capabilities,
    Config,
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
    "CPUAffinity", "Capabilities", "Config", "ConsoleSize", "Device", "Hook", "Hooks", "IDMapping",
    "IOPriority", "Linux", "Mount", "Namespace", "Personality", "Process", "Rlimit", "Root",
    "Scheduler", "Spec", "User", "config_from_doc", "load_config", "load_spec", "parse_process",
    "parse_spec",
]
