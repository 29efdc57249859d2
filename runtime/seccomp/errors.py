"""Errors of the seccomp package.

Invalid profiles raise ``runtime.errors.SpecError`` (naming the JSON field); ``SeccompError`` is
for a valid profile the kernel or this compiler cannot load.
"""

from __future__ import annotations

from runtime.errors import OCIRuntimeError


class SeccompError(OCIRuntimeError):
    """Compiling or loading a seccomp filter failed (too large, refused by the kernel, ...)."""
