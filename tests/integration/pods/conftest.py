from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.pods.helpers import PodRig, cleanup_cgroup_parent, remove_test_network
from tests.rig.daemon import start_crid
from tests.rig.leaks import Leaks


def write_config(base: Path, bridge: str) -> Path:
    """A config with a test bridge and pod CIDR of our own (never crid0 / 10.88.0.0/16)."""
    cfg = base / "crid.toml"
    cfg.write_text(f'[network]\nmode = "builtin"\nbridge = "{bridge}"\n'
                   f'pod_cidr = "10.213.0.0/16"\ncni_conf_dir = "{base}/cni"\n'
                   '[pods]\nshm_size = "8Mi"\n')
    return cfg


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[PodRig]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    bridge = f"crtp{secrets.token_hex(3)}"
    cfg = write_config(tmp_path, bridge)
    parent = f"/crt-pod-{secrets.token_hex(4)}"
    daemon = start_crid(tmp_path, config=cfg)
    r = PodRig(tmp_path, cfg, daemon, parent, bridge)
    try:
        yield r
    finally:
        try:
            r.remove_all()
            left = Leaks.of(r.daemon, parent)
            code = r.daemon.stop()
            after = Leaks.after_stop(r.daemon.run_root, parent)
        finally:
            cleanup_cgroup_parent(parent)
            remove_test_network(bridge)
    assert code == 0, r.daemon.log()
    assert (left, after) == (Leaks(), Leaks())
