"""Named errors of the embedded OCI runtime.

Two levels deep at most: every error the runtime raises on purpose is an ``OCIRuntimeError``.
Callers (the CLI, crid's gRPC error mapping) catch the base class or a specific subclass.
"""

from __future__ import annotations


class OCIRuntimeError(Exception):
    """Base of every error the runtime raises on purpose."""


class SpecError(OCIRuntimeError):
    """config.json is missing, unreadable or invalid; the message names the JSON field path."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


class ContainerNotFound(OCIRuntimeError):
    """No container with that id exists in the state directory."""


class ContainerExists(OCIRuntimeError):
    """A container with that id already exists."""


class InvalidState(OCIRuntimeError):
    """The operation is not allowed in the container's current state."""


class InitError(OCIRuntimeError):
    """Setting up the container process failed (reported by the init over its error pipe).

    Raised by ``spawn_init`` / ``exec_in``; by then the child has been killed and reaped.
    """


class UnsupportedMount(OCIRuntimeError):
    """A mount the spec asks for cannot be made on this host's filesystems as asked (a bind
    whose tree holds a filesystem the kernel will not idmap): the host's state, not the
    runtime, is at fault. Crosses the init's error pipe by name."""


class RequestError(OCIRuntimeError):
    """A request the runtime cannot carry out as given (e.g. too many fds to preserve)."""


class HookError(OCIRuntimeError):
    """A lifecycle hook failed: non-zero exit, signal, timeout or missing binary."""


class SecurityError(OCIRuntimeError):
    """A path resolved inside the rootfs tried to leave it, or a security feature is unavailable
    (e.g. an AppArmor profile requested on a host without AppArmor)."""
