"""OCI ``SCMP_ARCH_*`` names to libseccomp's architecture tokens (AUDIT_ARCH_* values)."""

from __future__ import annotations

import functools

from runtime.linux import libc
from runtime.seccomp.errors import SeccompError


@functools.cache
def arch_token(oci_arch: str) -> int:
    """libseccomp's token of an OCI ``SCMP_ARCH_*`` name (``SCMP_ARCH_X86_64`` -> x86_64).

    Raises SeccompError when this libseccomp does not know the architecture."""
    token = libc.seccomp_arch_resolve_name(oci_arch.removeprefix("SCMP_ARCH_").lower())
    if token is None:
        raise SeccompError(f"libseccomp {libc.seccomp_version()} does not know {oci_arch}")
    return token
