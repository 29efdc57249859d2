"""Errors of the cgroups package.

Invalid ``linux.resources`` or ``cgroupsPath`` values raise ``runtime.errors.SpecError`` naming
the field; ``CgroupError`` is for a valid request the host cannot carry out (a write refused by
the kernel, a missing controller, a cgroup that cannot be removed).
"""

from __future__ import annotations

from runtime.errors import OCIRuntimeError


class CgroupError(OCIRuntimeError):
    """A cgroup operation failed; the message names the file or directory and the errno."""
