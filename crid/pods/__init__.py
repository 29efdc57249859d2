from crid.pods.ids import PodId
from crid.pods.manager import PodFilter, PodManager, PodOptions, handler_set
from crid.pods.model import Metadata, NamespaceOptions, PodSandbox, PodSpec
from crid.pods.setup import SetupDeps
from crid.pods.state import PodState

__all__ = ["Metadata", "NamespaceOptions", "PodFilter", "PodId", "PodManager", "PodOptions",
           "PodSandbox", "PodSpec", "PodState", "SetupDeps", "handler_set"]
