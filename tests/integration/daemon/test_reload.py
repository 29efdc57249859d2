"""SIGHUP reloads the configuration of a running daemon: what can change at runtime changes,
what cannot is named, and a bad file is refused whole with the old configuration kept."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from crid.api import api_pb2 as pb
from tests.integration.daemon.test_metrics import scrape, value
from tests.rig import daemon as rig_daemon
from tests.rig.daemon import CridProcess, start_crid
from tests.rig.distribution import DistributionClient
from tests.rig.images import BuiltImage, push
from tests.rig.registry import Registry


class Rig:
    """A daemon started from a config file the test rewrites, without --log-level (a flag
    would win over the file)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.config, self.bridge = rig_daemon.test_network_config(base)
        self.network = self.config.read_text()
        self.daemon: CridProcess | None = None

    def write(self, top: str, tables: str = "") -> None:
        """Top-level keys go before the network table, other tables after it."""
        self.config.write_text(top + self.network + tables)

    def start(self) -> CridProcess:
        self.daemon = start_crid(self.base, config=self.config, log_level=None)
        return self.daemon

    def lines(self) -> list[dict]:
        assert self.daemon is not None
        return [json.loads(x) for x in self.daemon.log().splitlines() if x.startswith("{")]

    def reload(self) -> dict:
        """SIGHUP to the daemon by its PID; returns the log line that answered it."""
        assert self.daemon is not None
        answered = {"configuration reloaded", "configuration reload failed; keeping the "
                    "running configuration"}
        seen = len([x for x in self.lines() if x.get("event") in answered])
        os.kill(self.daemon.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = [x for x in self.lines() if x.get("event") in answered]
            if len(found) > seen:
                return found[-1]
            assert self.daemon.proc.poll() is None, self.daemon.log()
            time.sleep(0.02)
        raise AssertionError(f"no answer to SIGHUP in the log:\n{self.daemon.log()}")

    def rpc_debug_lines(self, method: str) -> int:
        return len([x for x in self.lines() if x.get("event") == "rpc"
                    and x.get("method") == method])


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    if r.daemon is not None:
        assert r.daemon.stop() == 0, r.daemon.log()
    rig_daemon.remove_test_network(r.bridge)


def test_sighup_changes_the_log_level_and_names_what_needs_a_restart(rig: Rig) -> None:
    rig.write('log_level = "info"\n')
    crid = rig.start()
    crid.runtime.Version(pb.VersionRequest())
    assert rig.rpc_debug_lines("Version") == 0  # debug lines are off at info
    rig.write('log_level = "debug"\n', '[pods]\nshm_size = "32Mi"\n')
    line = rig.reload()
    assert (line["event"], line["level"]) == ("configuration reloaded", "info")
    assert (line["changed"], line["needs_restart"]) == (["log_level"], ["pods.shm_size"])
    crid.runtime.Version(pb.VersionRequest())
    assert rig.rpc_debug_lines("Version") == 1
    status = crid.runtime.Status(pb.StatusRequest(verbose=True))
    running = json.loads(status.info["config"])
    assert (running["log_level"], running["pods"]["shm_size"]) == ("debug", "64Mi")


def test_sighup_with_a_bad_file_keeps_the_old_configuration(rig: Rig) -> None:
    rig.write('log_level = "info"\n')
    crid = rig.start()
    rig.write('log_level = "loud"\n')
    line = rig.reload()
    assert (line["event"], line["level"]) == (
        "configuration reload failed; keeping the running configuration", "error")
    assert line["error"] == f"{rig.config}: log_level: 'loud' is not one of debug, info, " \
                            "warning, error"
    rig.write("", "[images\n")
    assert "not valid TOML" in rig.reload()["error"]
    crid.runtime.Version(pb.VersionRequest())  # still serving, still at info
    assert rig.rpc_debug_lines("Version") == 0
    rig.write('log_level = "info"\n', '[images]\npinned = ["UPPER/Case:1"]\n')
    line = rig.reload()  # loads, but the image store refuses the reference: nothing applied
    assert line["event"].startswith("configuration reload failed") and "UPPER" in line["error"]
    assert json.loads(crid.runtime.Status(pb.StatusRequest(verbose=True)).info["config"])[
        "images"]["pinned"] == ["registry.k8s.io/pause:3.10"]


def test_sighup_adds_a_mirror_and_turns_metrics_on(rig: Rig, registry: Registry,
                                                   busybox_image: BuiltImage) -> None:
    push(DistributionClient(registry), "crt/busybox", busybox_image, tag="1.0")
    image = "crt-upstream.invalid/crt/busybox:1.0"  # a registry that does not exist
    crid = rig.start()
    with pytest.raises(grpc.RpcError) as e:
        crid.images.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image)), timeout=60)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    rig.write("", f'[images.registries."crt-upstream.invalid"]\nmirrors = ["{registry.url}"]\n'
              '[metrics]\nenable = true\nlisten = "127.0.0.1:0"\n')
    line = rig.reload()
    assert line["changed"] == ["images.registries", "metrics.enable", "metrics.listen"]
    crid.images.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image)), timeout=60)
    (url,) = [x["url"] for x in rig.lines() if x.get("event") == "serving metrics"]
    assert value(scrape(url), "crid_operations_total", operation="PullImage", code="OK") == 1
    rig.write("")
    assert rig.reload()["changed"] == ["images.registries", "metrics.enable",
                                       "metrics.listen"]
    with pytest.raises(OSError):
        scrape(url)  # metrics are off again: nothing listens there
