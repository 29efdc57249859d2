"""Capabilities a bundle asks for that the runtime cannot give: runc 1.1's own default spec
(ambient capabilities, no inheritable set) and capabilities this host's root does not hold
(CAP_SYS_RESOURCE here) run, with what was left out said at debug level."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import caps
from tests.integration.runtime.clikit import cli, stop_server
from tests.integration.runtime.lifekit import PREFIX, leftover_cgroups

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

PRINT_CAPS = ["/bin/busybox", "grep", "^Cap", "/proc/self/status"]


@pytest.fixture(autouse=True)
def _stop_servers(tmp_path: Path) -> Iterator[None]:
    yield
    stop_server(tmp_path / "root")
    assert leftover_cgroups(PREFIX) == []


def _runc_bundle(path: Path) -> dict:
    """`runc spec` in a fresh bundle with busybox-static as the rootfs; no terminal (the test
    has none) and the capability-printing command: otherwise the spec as runc wrote it."""
    (path / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", path / "rootfs" / "bin" / "busybox")
    subprocess.run(["runc", "spec"], cwd=path, check=True)
    spec = json.loads((path / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = PRINT_CAPS
    (path / "config.json").write_text(json.dumps(spec))
    return spec


def _status_caps(out: str) -> dict[str, list[str]]:
    sets = dict(line.split(":\t") for line in out.splitlines())
    return {k: caps.mask_names(int(v, 16)) for k, v in sets.items()}


def test_runc_spec_bundle_runs_unchanged(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    spec = _runc_bundle(bundle)
    assert "inheritable" not in spec["process"]["capabilities"]  # what made prctl(47) fail
    assert spec["process"]["capabilities"]["ambient"]
    r = cli(tmp_path / "root", "--debug", "run", PREFIX + "runcspec", cwd=bundle)
    assert r.returncode == 0, r.stderr
    want = sorted(spec["process"]["capabilities"]["effective"], key=caps.cap_number)
    got = _status_caps(r.stdout)
    assert (got["CapEff"], got["CapPrm"], got["CapBnd"]) == (want, want, want)
    assert (got["CapInh"], got["CapAmb"]) == ([], [])
    assert ("crid-runtime: debug: container " + PREFIX + "runcspec: ambient capabilities not in "
            "the permitted and inheritable sets, not raised: " + ", ".join(want)) in r.stderr


def test_caps_the_runtime_does_not_hold_are_left_out(tmp_path: Path) -> None:
    held = caps.held()
    every = list(caps.CAP_NAMES[:caps.last_cap() + 1])
    lacking = caps.mask_names(caps.to_mask(every, caps.last_cap()) & ~held.permitted)
    bundle = tmp_path / "bundle"
    spec = _runc_bundle(bundle)
    spec["process"]["capabilities"] = {k: every for k in (
        "bounding", "effective", "permitted", "inheritable", "ambient")}
    (bundle / "config.json").write_text(json.dumps(spec))
    r = cli(tmp_path / "root", "--debug", "--log-format", "json", "--log",
            str(tmp_path / "log.json"), "run", PREFIX + "allcaps", cwd=bundle)
    assert r.returncode == 0, r.stderr
    got = _status_caps(r.stdout)
    granted = caps.mask_names(held.permitted & caps.to_mask(every, caps.last_cap()))
    assert got["CapEff"] == got["CapPrm"] == got["CapInh"] == got["CapAmb"] == granted
    lines = [json.loads(ln) for ln in (tmp_path / "log.json").read_text().splitlines()]
    debug = [ln["msg"] for ln in lines if ln["level"] == "debug"]
    if lacking:  # this host: root without CAP_SYS_RESOURCE
        assert debug == [f"container {PREFIX}allcaps: capabilities the runtime does not hold, "
                         f"not granted: {', '.join(lacking)}",
                         f"container {PREFIX}allcaps: ambient capabilities not in the permitted "
                         f"and inheritable sets, not raised: {', '.join(lacking)}"]
    else:
        assert debug == []
