"""Named volumes: directories under crid's root that outlive the containers mounting them."""

from crid.volumes.copyup import copy_up
from crid.volumes.store import ANONYMOUS_LABEL, Volume, VolumeStore, check_volume_name

__all__ = ["ANONYMOUS_LABEL", "Volume", "VolumeStore", "check_volume_name", "copy_up"]
