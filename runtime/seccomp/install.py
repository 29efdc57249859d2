"""Load a seccomp filter into the calling process (the container init, right before exec)."""

from __future__ import annotations

import errno
from typing import Any

from runtime.linux import libc
from runtime.seccomp.compiler import CompiledFilter, compile_filter
from runtime.seccomp.errors import SeccompError
from runtime.seccomp.profile import SeccompProfile, validate_seccomp


def prepare_filter(seccomp: dict[str, Any] | SeccompProfile) -> CompiledFilter:
    """Validate (if given the raw OCI object) and compile; call it before forking so the child
    only has to load the bytes.

    Raises:
        SpecError: the profile is invalid (names the field).
        SeccompError: the program is too large.
    """
    profile = seccomp if isinstance(seccomp, SeccompProfile) else validate_seccomp(seccomp)
    return compile_filter(profile)


def install_filter(seccomp: dict[str, Any] | SeccompProfile | CompiledFilter) -> None:
    """Load the filter into the calling thread (all threads with SECCOMP_FILTER_FLAG_TSYNC).

    The caller sets no_new_privs first unless it holds CAP_SYS_ADMIN; the filter then applies
    to this process and everything it executes, and cannot be removed.

    Raises:
        SpecError: the profile is invalid (names the field).
        SeccompError: the kernel refused the filter (message carries errno and the reason).
    """
    compiled = seccomp if isinstance(seccomp, CompiledFilter) else prepare_filter(seccomp)
    try:
        libc.seccomp_set_mode_filter(compiled.encode(), compiled.flags)
    except OSError as e:
        hint = ""
        if e.errno == errno.EACCES:
            hint = " (set no_new_privs first or hold CAP_SYS_ADMIN)"
        raise SeccompError(f"loading seccomp filter: {e}{hint}") from e
