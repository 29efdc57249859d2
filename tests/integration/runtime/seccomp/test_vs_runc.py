"""crid-runtime, runc and crun (all three on libseccomp) run one bundle with one seccomp profile:
every probe inside the container sees the same results."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from crid.containers.seccomp_default import default_profile
from tests.integration.runtime.bundle import DEFAULT_CAPS
from tests.integration.runtime.clikit import cli, stop_server
from tests.integration.runtime.lifekit import PREFIX, write_bundle

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

EXTRA_APPLETS = ("mkdir", "linux32", "linux64", "sync", "uname", "chmod", "ln")

TARGETED = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30,
         "args": [{"index": 1, "value": 0o7000, "valueTwo": 0o4000,
                   "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30,
         "args": [{"index": 2, "value": 0o7000, "valueTwo": 0o4000,
                   "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["symlinkat", "symlink"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["not_a_syscall_anywhere"], "action": "SCMP_ACT_KILL"},
    ],
}
PROBE = ("mkdir /tmp/a; echo mkdir=$?; linux32 true; echo linux32=$?; "
         "linux64 true; echo linux64=$?; touch /tmp/f; chmod 4755 /tmp/f; "
         "echo suid=$?; chmod 0755 /tmp/f; echo plain=$?; uname -s; ln -s f /tmp/l; echo ln=$?")
DEFAULT_PROBE = ("mkdir /tmp/a && echo mkdir=$?; unshare -m true; echo unshare=$?; "
                 "mount -t tmpfs t /mnt; echo mount=$?; sh -c 'exit 3' & wait $!; "
                 "echo child=$?; chroot / true; echo chroot=$?; uname -s")


def _runtimes() -> list[str]:
    return ["crid"] + [r for r in ("runc", "crun") if shutil.which(r)]


def _bundle(path: Path, script: str, seccomp: dict) -> Path:
    # ociVersion 1.0.2: Debian's crun 1.8 refuses newer ones
    bundle = write_bundle(path, ["sh", "-c", script], linux__seccomp=seccomp, ociVersion="1.0.2")
    for applet in EXTRA_APPLETS:
        link = bundle / "rootfs" / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (bundle / "rootfs" / "mnt").mkdir(exist_ok=True)
    return bundle


def _run(runtime: str, root: Path, bundle: Path, cid: str) -> tuple[int, str, str]:
    if runtime == "crid":
        r = cli(root, "run", "-b", str(bundle), cid)
        return r.returncode, r.stdout, r.stderr
    cmd = [runtime, "--root", str(root), "run", "-b", str(bundle), cid]
    if runtime == "crun":
        # crun refuses this hybrid host's empty cgroup2 mount: hide it in a mount namespace
        # of its own, as the runtime bench does.
        cmd = ["unshare", "-m", "sh", "-c",
               'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"', *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    subprocess.run([runtime, "--root", str(root), "delete", "-f", cid], capture_output=True,
                   timeout=60)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture(name="roots")
def roots_fixture(tmp_path: Path) -> Iterator[dict[str, Path]]:
    roots = {rt: tmp_path / f"root-{rt}" for rt in _runtimes()}
    yield roots
    stop_server(roots["crid"])


def _compare(tmp_path: Path, roots: dict[str, Path], script: str, seccomp: dict,
             name: str) -> dict[str, tuple[int, str, str]]:
    """Each runtime gets its own copy of the bundle: the probes write to the rootfs."""
    results = {rt: _run(rt, root, _bundle(tmp_path / f"b-{rt}", script, seccomp),
                        f"{PREFIX}{name}-{rt}") for rt, root in roots.items()}
    assert len(results) == 3, "runc and crun are installed by tools/install-deps.sh"
    crid = results["crid"]
    for rt, got in results.items():
        assert got[:2] == crid[:2], (rt, got, crid)
    return results


def test_targeted_profile_gives_what_runc_and_crun_give(tmp_path: Path,
                                                        roots: dict[str, Path]) -> None:
    results = _compare(tmp_path, roots, PROBE, TARGETED, "sct")
    code, out, _ = results["crid"]
    # symlinkat is KILL_PROCESS: SIGSYS (31) ends ln's process
    assert (code, out) == (0, "mkdir=1\nlinux32=1\nlinux64=0\nsuid=1\nplain=0\nLinux\nln=159\n")


def test_runtime_default_profile_gives_what_runc_and_crun_give(
        tmp_path: Path, roots: dict[str, Path]) -> None:
    results = _compare(tmp_path, roots, DEFAULT_PROBE, default_profile(DEFAULT_CAPS), "scd")
    code, out, _ = results["crid"]
    assert (code, out) == (0, "mkdir=0\nunshare=1\nmount=1\nchild=3\nchroot=0\nLinux\n")
