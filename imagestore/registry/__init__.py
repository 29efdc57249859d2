"""Registry client: re-exports."""

from imagestore.registry.client import Endpoint, Fetched, RegistryClient, Repository
from imagestore.registry.credentials import Credentials, load_auth_file

__all__ = ["Credentials", "Endpoint", "Fetched", "RegistryClient", "Repository",
           "load_auth_file"]
