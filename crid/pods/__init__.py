from crid.pods.ids import PodId
from crid.pods.manager import PodFilter, PodManager, PodOptions, handler_set
from crid.pods.model import (
    IdMapping,
    Metadata,
    NamespaceOptions,
    PodSandbox,
    PodSpec,
    UserNamespace,
)
from crid.pods.setup import SetupDeps
from crid.pods.state import PodState

__all__ = ["IdMapping", "Metadata", "NamespaceOptions", "PodFilter", "PodId", "PodManager",
           "PodOptions", "PodSandbox", "PodSpec", "PodState", "SetupDeps", "UserNamespace",
           "handler_set"]
