"""The Docker API's one place where exceptions become HTTP status codes and
`{"message": ...}` bodies (what the docker CLI prints as "Error response from daemon")."""

from __future__ import annotations

from crid import errors
from imagestore import (
    AccessDenied,
    AuthenticationRequired,
    ImageInUse,
    ImageNotFound,
    ImageStoreError,
    InvalidImage,
    InvalidReference,
    RegistryUnavailable,
    VerificationFailed,
)


class DockerApiError(errors.CridError):
    """Errors only this front door raises (Docker's own statuses)."""


class BadRequest(DockerApiError):
    """Malformed HTTP, JSON, query parameter or field: 400, nothing done."""


class BodyTooLarge(BadRequest):
    """A request body past its route's limit: 413, nothing kept."""


class Conflict(DockerApiError):
    """A name in use, an image used by a container, removing a running container: 409."""


class Forbidden(DockerApiError):
    """An operation Docker refuses outright (on its predefined networks): 403."""


class NotModified(DockerApiError):
    """Starting a started container, stopping a stopped one: 304 (no body)."""


class RouteNotFound(DockerApiError):
    """No endpoint at this path: 404 "page not found"."""


class NotImplementedYet(DockerApiError):
    """An endpoint Docker has that crid does not serve yet: 501."""


_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (NotModified, 304),
    (BodyTooLarge, 413),
    (BadRequest, 400),
    (RouteNotFound, 404),
    (Conflict, 409),
    (Forbidden, 403),
    (NotImplementedYet, 501),
    (errors.InvalidArgument, 400),
    (errors.NotFound, 404),
    (errors.AlreadyExists, 409),
    (errors.FailedPrecondition, 409),
    (errors.Unauthenticated, 401),
    (errors.PermissionDenied, 403),
    (errors.Unavailable, 503),
    (errors.DeadlineExceeded, 504),
    (errors.ResourceExhausted, 500),
    (InvalidReference, 400),
    (ImageNotFound, 404),
    (AuthenticationRequired, 401),
    (AccessDenied, 403),
    (ImageInUse, 409),
    (RegistryUnavailable, 500),
    (InvalidImage, 500),
    (VerificationFailed, 500),
    (ImageStoreError, 500),
)


def status_for(exc: BaseException) -> int:
    """The HTTP status for exc: its most specific listed base class, else 500."""
    for cls in type(exc).__mro__:
        for known, status in _STATUS:
            if cls is known:
                return status
    return 500


def message_body(exc: BaseException) -> dict[str, str]:
    return {"message": str(exc) or type(exc).__name__}
