from crid.store.metadata import MetadataStore, StoreError

__all__ = ["MetadataStore", "StoreError"]
