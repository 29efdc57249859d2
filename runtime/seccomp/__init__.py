"""OCI ``linux.seccomp``: validation, compiling with libseccomp, and loading."""

from runtime.seccomp.compiler import CompiledFilter, compile_filter
from runtime.seccomp.errors import SeccompError
from runtime.seccomp.install import install_filter, prepare_filter
from runtime.seccomp.profile import (
    Action,
    ArgCondition,
    SeccompProfile,
    SyscallRule,
    validate_seccomp,
)

__all__ = [
    "Action",
    "ArgCondition",
    "CompiledFilter",
    "SeccompError",
    "SeccompProfile",
    "SyscallRule",
    "compile_filter",
    "install_filter",
    "prepare_filter",
    "validate_seccomp",
]
