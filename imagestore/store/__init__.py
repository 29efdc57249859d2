"""Content store: re-exports."""

from imagestore.store.imagestore import FsUsage, ImageStore
from imagestore.store.records import ImageRecord

__all__ = ["FsUsage", "ImageRecord", "ImageStore"]
