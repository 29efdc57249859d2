"""Which kernels get the user-namespace feature (RuntimeHandlerFeatures.user_namespaces)."""

from __future__ import annotations

import pytest

from crid.runtime_info import IDMAPPED_OVERLAY_LAYERS, kernel_at_least


@pytest.mark.parametrize("release, want", [
    ("6.18.0-1-amd64", True), ("5.19.0", True), ("5.18.17-generic", False),
    ("4.19.0-27-amd64", False), ("10.0", True), ("garbage", False), ("", False),
])
def test_idmapped_overlay_layers_need_5_19(release: str, want: bool) -> None:
    assert kernel_at_least(release, IDMAPPED_OVERLAY_LAYERS) is want
