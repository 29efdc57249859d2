from crid.store.atomic import atomic_write
from crid.store.metadata import MetadataStore, StoreError

__all__ = ["MetadataStore", "StoreError", "atomic_write"]
