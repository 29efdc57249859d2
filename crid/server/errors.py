"""The one place where exceptions become gRPC status codes: crid's own and the libraries'."""

from __future__ import annotations

import grpc

import imagestore
from crid import errors
from crid.streaming.protocol import RequestError

_CODES: dict[type[BaseException], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Internal: grpc.StatusCode.INTERNAL,
    RequestError: grpc.StatusCode.INVALID_ARGUMENT,
    imagestore.InvalidReference: grpc.StatusCode.INVALID_ARGUMENT,
    imagestore.ImageNotFound: grpc.StatusCode.NOT_FOUND,
    imagestore.AuthenticationRequired: grpc.StatusCode.UNAUTHENTICATED,
    imagestore.AccessDenied: grpc.StatusCode.PERMISSION_DENIED,
    imagestore.RegistryUnavailable: grpc.StatusCode.UNAVAILABLE,
    imagestore.InvalidImage: grpc.StatusCode.FAILED_PRECONDITION,
    imagestore.VerificationFailed: grpc.StatusCode.DATA_LOSS,
    imagestore.ImageInUse: grpc.StatusCode.FAILED_PRECONDITION,
}


def status_for(exc: BaseException) -> grpc.StatusCode:
    """The status code for exc: the most specific registered base class, else INTERNAL."""
    for cls in type(exc).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return grpc.StatusCode.INTERNAL
