from crid.pods.ids import PodId
from crid.pods.manager import PodFilter, PodManager, PodOptions, handler_set
from crid.pods.model import (
    DNS,
    Metadata,
    NamespaceOptions,
    PodSandbox,
    PodSpec,
    PortMapping,
    Resources,
)
from crid.pods.network import Attachment, NoPodNetwork, PodNetworkPort, Readiness
from crid.pods.setup import SetupDeps
from crid.pods.state import PodState

__all__ = ["DNS", "Attachment", "Metadata", "NamespaceOptions", "NoPodNetwork", "PodFilter",
           "PodId", "PodManager", "PodNetworkPort", "PodOptions", "PodSandbox", "PodSpec",
           "PodState", "PortMapping", "Readiness", "Resources", "SetupDeps", "handler_set"]
