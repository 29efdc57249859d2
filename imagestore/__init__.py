"""crid's image store: references, registry client, manifests, content store, unpacker, GC."""

from imagestore.errors import (
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
from imagestore.options import ImageStoreOptions, RegistryOptions
from imagestore.reference import Reference
from imagestore.registry.credentials import Credentials
from imagestore.registry.push import CatalogUnavailable
from imagestore.store import (
    FsUsage,
    ImageRecord,
    ImageStore,
    NewImage,
    PushEvent,
    PushResult,
)

__all__ = [
    "AccessDenied", "AuthenticationRequired", "CatalogUnavailable", "Credentials", "FsUsage",
    "ImageInUse", "ImageNotFound", "ImageRecord", "ImageStore", "ImageStoreError",
    "ImageStoreOptions", "InvalidImage", "InvalidReference", "NewImage", "PushEvent", "PushResult",
    "Reference", "RegistryOptions", "RegistryUnavailable", "VerificationFailed",
]
