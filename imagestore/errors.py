"""The named errors of the image store, and the gRPC codes the daemon maps them to.

Every error the library raises on purpose is an `ImageStoreError`; anything else is a bug.
Messages say what was being done and on what, and never contain passwords or tokens.

- InvalidReference → INVALID_ARGUMENT: a malformed image name.
- ImageNotFound → NOT_FOUND: unknown image, repository, tag or digest.
- AuthenticationRequired → UNAUTHENTICATED: HTTP 401, no or rejected credentials.
- AccessDenied → PERMISSION_DENIED: HTTP 403, credentials accepted but access refused.
- RegistryUnavailable → UNAVAILABLE: a registry cannot be reached or keeps failing (5xx, 429).
- InvalidImage → FAILED_PRECONDITION: content transferred fine but refused (schema 1, unknown
  media type, not JSON, over a size limit, unsafe tar entry, decompression bomb).
- VerificationFailed (an InvalidImage) → DATA_LOSS: content does not match its digest, size or
  diff_id, or a blob stays truncated after the retries.
- ImageInUse → FAILED_PRECONDITION: removing an image a container still uses.
"""

from __future__ import annotations


class ImageStoreError(Exception):
    """Base of every error the image store raises on purpose."""


class InvalidReference(ImageStoreError):
    """The image name does not follow the reference grammar."""


class ImageNotFound(ImageStoreError):
    """The image, repository, tag or digest does not exist (locally or in the registry)."""


class AuthenticationRequired(ImageStoreError):
    """The registry wants credentials, or rejected the ones given (HTTP 401)."""


class AccessDenied(ImageStoreError):
    """The registry refused access with valid credentials (HTTP 403)."""


class RegistryUnavailable(ImageStoreError):
    """No endpoint of the registry could be reached, or it kept failing after retries."""


class InvalidImage(ImageStoreError):
    """The content is well transferred but refused: bad JSON, media type, size, unsafe tar."""


class VerificationFailed(InvalidImage):
    """Content does not match its digest, size or diff_id (includes truncated blobs)."""


class ImageInUse(ImageStoreError):
    """The image cannot be removed: a container still uses it."""
