"""Content store: re-exports."""

from imagestore.store.creating import NewImage
from imagestore.store.imagestore import FsUsage, ImageStore
from imagestore.store.pushing import PushEvent, PushResult
from imagestore.store.records import ImageRecord
from imagestore.store.saving import SavedLayer

__all__ = ["FsUsage", "ImageRecord", "ImageStore", "NewImage", "PushEvent", "PushResult",
           "SavedLayer"]
