"""crid: a Kubernetes container engine speaking CRI v1."""

from crid.version import __version__

__all__ = ["__version__"]
