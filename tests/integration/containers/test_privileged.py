"""Privileged pods as the kubelet runs them, on a host whose root lacks capabilities (here
CAP_SYS_RESOURCE): privileged and ALL-caps containers start with the engine's bounding set,
seccomp is ignored when privileged, and mount propagation works both ways (cri-tools
pkg/validate: security_context.go, container_linux.go)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from crid.api import api_pb2 as pb
from crid.containers import capabilities
from tests.integration.containers.helpers import (
    PREFIX,
    ContainerRig,
    container_config,
    mounts_under,
)
from tests.integration.pods.helpers import pod_config

SLEEP = ("/bin/sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait")
DENY_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}


def _engine_caps() -> list[str]:
    """What this host lets an engine running as this test's root grant (its CapBnd)."""
    held = capabilities.engine_caps()
    return [c for c in capabilities.ALL_CAPS if c in held]


def _privileged_pod(rig: ContainerRig) -> tuple[str, pb.PodSandboxConfig]:
    cfg = pod_config(name=f"{PREFIX}priv-{secrets.token_hex(3)}", parent=rig.cgroup_parent)
    cfg.linux.security_context.privileged = True
    cfg.log_directory = str(rig.log_dir / cfg.metadata.name)
    pod_id = rig.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
    rig.pods.append(pod_id)
    return pod_id, cfg


def _linux(**sc: object) -> pb.LinuxContainerConfig:
    return pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(**sc))


def _caps_of(rig: ContainerRig, cid: str) -> dict[str, list[str]]:
    out = rig.exec(cid, "busybox", "grep", "^Cap", "/proc/self/status")
    assert out.exit_code == 0, out.stderr
    sets = dict(line.split(":\t") for line in out.stdout.decode().splitlines())
    return {k: [c for i, c in enumerate(capabilities.ALL_CAPS) if int(v, 16) >> i & 1]
            for k, v in sets.items()}


def test_privileged_container_starts_with_the_engines_bounding_set(rig: ContainerRig) -> None:
    pod = _privileged_pod(rig)
    cid = rig.run(pod, container_config(command=SLEEP, linux=_linux(privileged=True)))
    got = _caps_of(rig, cid)
    assert got["CapEff"] == got["CapPrm"] == got["CapBnd"] == _engine_caps()
    lacking = capabilities.ungranted(capabilities.engine_caps())  # here: CAP_SYS_RESOURCE
    said = [ln for ln in rig.daemon.log().splitlines() if "cannot be granted" in ln]
    assert len(said) == (1 if lacking else 0)
    assert all(c in said[0] for c in lacking)


def test_all_caps_container_starts_with_the_engines_bounding_set(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cid = rig.run(pod, container_config(command=SLEEP, linux=_linux(
        capabilities=pb.Capability(add_capabilities=["ALL"]))))
    got = _caps_of(rig, cid)
    assert got["CapEff"] == got["CapPrm"] == got["CapBnd"] == _engine_caps()


def test_named_adds_the_engine_lacks_are_left_out(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cid = rig.run(pod, container_config(command=SLEEP, linux=_linux(
        capabilities=pb.Capability(add_capabilities=["SYS_RESOURCE", "NET_ADMIN"]))))
    got = _caps_of(rig, cid)["CapEff"]
    want = [c for c in capabilities.ALL_CAPS if c in capabilities.DEFAULT_CAPS
            or c in ("CAP_NET_ADMIN", "CAP_SYS_RESOURCE")]
    assert got == [c for c in want if c in _engine_caps()]
    # said at debug level for this container, naming what was left out
    left_out = [c for c in want if c not in _engine_caps()]
    said = [ln for ln in rig.daemon.log().splitlines()
            if "capabilities the engine does not hold, not granted" in ln and cid in ln]
    assert len(said) == (1 if left_out else 0)
    assert all(c in said[0] for c in left_out)


def test_seccomp_is_ignored_when_privileged(rig: ContainerRig, tmp_path: Path) -> None:
    profile = tmp_path / "deny-mkdir.json"
    profile.write_text(json.dumps(DENY_MKDIR))
    pod = _privileged_pod(rig)
    for prof in (pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost,
                                    localhost_ref=str(profile)),
                 pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault)):
        cid = rig.run(pod, container_config(command=SLEEP, linux=_linux(
            privileged=True, seccomp=prof)))
        made = rig.exec(cid, "mkdir", "/tmp/crt-made")
        assert (made.exit_code, made.stderr) == (0, b"")
        mode = rig.exec(cid, "busybox", "grep", "^Seccomp:", "/proc/self/status").stdout
        assert mode == b"Seccomp:\t0\n"


@contextmanager
def _host_volume(base: Path, propagation: str) -> Iterator[Path]:
    """A host directory that is its own mount with `propagation` (cri-tools makes it so), with
    a source directory and a mount point in it; everything under it unmounted afterwards."""
    vol = base / f"vol-{propagation}"
    (vol / "src").mkdir(parents=True)
    (vol / "src" / "from-host").write_text("host\n")
    (vol / "mnt").mkdir()
    (vol / "ctr-src").mkdir()
    (vol / "ctr-src" / "from-container").write_text("ctr\n")
    (vol / "ctr-mnt").mkdir()
    subprocess.run(["mount", "--bind", str(vol), str(vol)], check=True)
    try:
        subprocess.run(["mount", f"--make-r{propagation}", str(vol)], check=True)
        yield vol
    finally:
        subprocess.run(["umount", "-R", "-l", str(vol)], check=False)


def _mounted_on_host(path: Path) -> bool:
    text = Path("/proc/self/mountinfo").read_text()
    return any(line.split()[4] == str(path) for line in text.splitlines())


@pytest.mark.parametrize("propagation, pb_mode, to_container, to_host", [
    ("private", pb.PROPAGATION_PRIVATE, False, False),
    ("shared", pb.PROPAGATION_HOST_TO_CONTAINER, True, False),
    ("shared", pb.PROPAGATION_BIDIRECTIONAL, True, True),
])
def test_mount_propagation_in_a_privileged_pod(rig: ContainerRig, tmp_path: Path,
                                               propagation: str, pb_mode: int,
                                               to_container: bool, to_host: bool) -> None:
    pod = _privileged_pod(rig)
    with _host_volume(tmp_path, propagation) as vol:
        cid = rig.run(pod, container_config(command=SLEEP, linux=_linux(privileged=True),
                                            mounts=[pb.Mount(container_path="/vol",
                                                             host_path=str(vol),
                                                             propagation=pb_mode)]))
        # host -> container: a mount made on the host after the container started
        subprocess.run(["mount", "--bind", str(vol / "src"), str(vol / "mnt")], check=True)
        seen = rig.exec(cid, "cat", "/vol/mnt/from-host")
        assert (seen.exit_code == 0) == to_container, seen
        # container -> host: a mount made in the container
        made = rig.exec(cid, "busybox", "mount", "--bind", "/vol/ctr-src", "/vol/ctr-mnt")
        assert made.exit_code == 0, made.stderr
        assert _mounted_on_host(vol / "ctr-mnt") == to_host
        assert (vol / "ctr-mnt" / "from-container").exists() == to_host
        # the container's own mounts (proc, dev, its volumes) stay in the container
        assert [m.rsplit("/", 1)[1] for m in mounts_under(rig.daemon.root / "containers")] == [
            "rootfs"]
        rig.stop(rig.status(cid).status.id)
    assert not _mounted_on_host(vol) and not os.path.ismount(vol)
