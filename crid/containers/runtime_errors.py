"""The one translation of the embedded runtime's errors into crid's (and so into gRPC and HTTP
status codes by each front door): every path into the runtime — create, start, kill, wait,
delete, update, exec, exec-sync, attach — runs under `runtime_errors`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from crid.errors import FailedPrecondition, Internal, NotFound
from runtime.api import ContainerNotFound, InvalidState, OCIRuntimeError, UnsupportedMount


class RuntimeFailed(Internal):
    """The embedded runtime refused or failed an operation (the message names it)."""


@contextmanager
def runtime_errors(what: str) -> Iterator[None]:
    """Runs the block, raising NotFound (no such container), FailedPrecondition (wrong state
    for `what`) or RuntimeFailed (the rest, OSError included) for what the runtime raised."""
    try:
        yield
    except OCIRuntimeError as e:
        raise mapped(what, e) from e
    except OSError as e:
        raise RuntimeFailed(f"{what}: {e}") from e


def mapped(what: str, e: OCIRuntimeError) -> Exception:
    # The runtime's messages usually name the operation and container already.
    msg = str(e) if what.split()[-1] in str(e) else f"{what}: {e}"
    if isinstance(e, ContainerNotFound):
        return NotFound(msg)
    if isinstance(e, InvalidState | UnsupportedMount):  # UnsupportedMount: the host's mounts
        return FailedPrecondition(msg)
    return RuntimeFailed(msg)
