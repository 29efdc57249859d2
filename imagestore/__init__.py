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
from imagestore.manifest import host_platform
from imagestore.options import ImageStoreOptions, RegistryOptions
from imagestore.pack import is_opaque, pack_layer
from imagestore.progress import DONE, DOWNLOADING, EXISTS, VERIFIED, WAITING, LayerProgress
from imagestore.reference import DEFAULT_TAG, Reference
from imagestore.reference import candidates as reference_candidates
from imagestore.reference import parse as parse_reference
from imagestore.registry.credentials import Credentials
from imagestore.registry.push import CatalogUnavailable
from imagestore.store import (
    FsUsage,
    ImageRecord,
    ImageStore,
    NewImage,
    PushEvent,
    PushResult,
    SavedLayer,
)

__all__ = [
    "AccessDenied", "AuthenticationRequired", "CatalogUnavailable", "Credentials",
    "DEFAULT_TAG", "DONE", "DOWNLOADING", "EXISTS", "FsUsage", "ImageInUse", "ImageNotFound",
    "ImageRecord", "ImageStore", "ImageStoreError", "ImageStoreOptions", "InvalidImage",
    "InvalidReference", "LayerProgress", "NewImage", "PushEvent", "PushResult", "Reference",
    "RegistryOptions", "RegistryUnavailable", "SavedLayer", "VERIFIED", "VerificationFailed",
    "WAITING",
    "host_platform", "is_opaque", "pack_layer", "parse_reference", "reference_candidates",
]
