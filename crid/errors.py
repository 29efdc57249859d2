"""The daemon's named error types; crid/server/errors.py maps them to gRPC status codes."""

from __future__ import annotations


class CridError(Exception):
    """Base of every error the daemon reports to a client."""


class InvalidArgument(CridError):
    """The request is malformed: a missing field, a bad value."""


class NotFound(CridError):
    """The pod, container or image the request names does not exist."""


class AlreadyExists(CridError):
    """A name is reserved by another object."""


class FailedPrecondition(CridError):
    """The object is not in a state that allows the operation."""


class Unavailable(CridError):
    """A dependency (registry, network) cannot be reached right now."""


class Unauthenticated(CridError):
    """Credentials are missing or wrong."""


class PermissionDenied(CridError):
    """Credentials are valid but not allowed to do this."""


class DeadlineExceeded(CridError):
    """The operation ran past its timeout."""


class ResourceExhausted(CridError):
    """A limit was reached (output size, subscribers, space)."""


class Internal(CridError):
    """A bug or an unexpected system failure."""
