"""Debian's containerd 1.6 with a config, root, state and socket of the bench's own.

`running_containerd(workdir, options)` writes a version-2 config (CRI plugin on, overlayfs,
runc v2 shim with /usr/bin/runc, `sandbox_image` and per-registry plain-HTTP mirrors pointing at
rig registries, a CNI bridge conflist of its own), starts `containerd --config`, waits until CRI
answers, and on exit: removes pods through CRI, stops containerd by PID, kills the shims it
started (found by its socket path in their command line), deletes its CNI bridge, unmounts
everything left under the work dir, and removes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from crid.api import api_pb2 as pb
from tests.rig.cri_client import CriClient

CONTAINERD_BIN = "/usr/bin/containerd"
RUNC_BIN = "/usr/bin/runc"
CNI_BIN_DIR = "/usr/lib/cni"
START_TIMEOUT = 30.0


class ContainerdError(Exception):
    """containerd could not be started or stopped cleanly."""


@dataclass(frozen=True)
class ContainerdOptions:
    """`sandbox_image`: pause image ref; `plain_http_registries`: `host:port`s reached over
    HTTP (each gets itself as mirror endpoint); `mirrors`: extra host → endpoint URLs."""

    sandbox_image: str
    plain_http_registries: Sequence[str] = ()
    mirrors: tuple[tuple[str, tuple[str, ...]], ...] = ()
    bridge: str = "crtrigbr0"
    subnet: str = "10.239.0.0/24"


@dataclass(frozen=True)
class Containerd:
    """A running containerd: CRI socket, PID and directories."""

    socket: Path
    pid: int
    root: Path
    state: Path
    log_path: Path
    bridge: str


@contextlib.contextmanager
def running_containerd(workdir: Path, options: ContainerdOptions) -> Iterator[Containerd]:
    """Start containerd under `workdir` (created; removed afterwards). Raises ContainerdError."""
    if not os.access(CONTAINERD_BIN, os.X_OK):
        raise ContainerdError(f"{CONTAINERD_BIN} not found: install Debian's containerd")
    workdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        stack.callback(_remove_tree, workdir)
        config = write_config(workdir, options)
        log_path = workdir / "containerd.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [CONTAINERD_BIN, "--config", str(config)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        handle = Containerd(workdir / "containerd.sock", proc.pid, workdir / "root",
                            workdir / "state", log_path, options.bridge)
        stack.callback(_stop, proc, handle)
        _wait_ready(handle, proc)
        yield handle


def write_config(workdir: Path, options: ContainerdOptions) -> Path:
    """Write `config.toml` (and the CNI conflist) under `workdir`; returns the config path."""
    cni_conf = workdir / "cni"
    cni_conf.mkdir(exist_ok=True)
    (cni_conf / "10-crt-rig.conflist").write_text(json.dumps(_cni(workdir, options), indent=2))
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    lines = [
        "version = 2",
        f'root = "{workdir / "root"}"',
        f'state = "{workdir / "state"}"',
        f'temp = "{workdir / "tmp"}"',
        'disabled_plugins = ["io.containerd.snapshotter.v1.aufs",'
        ' "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",'
        ' "io.containerd.snapshotter.v1.devmapper"]',
        "[grpc]", f'  address = "{workdir / "containerd.sock"}"',
        "[ttrpc]", f'  address = "{workdir / "containerd.sock.ttrpc"}"',
        "[debug]", '  address = ""', '  level = "info"',
        "[metrics]", '  address = ""',
        '[plugins."io.containerd.internal.v1.opt"]', f'  path = "{workdir / "opt"}"',
        f"[{cri}]",
        f'  sandbox_image = "{options.sandbox_image}"',
        '  stream_server_address = "127.0.0.1"', '  stream_server_port = "0"',
        "  disable_apparmor = true", "  restrict_oom_score_adj = true",
        "  netns_mounts_under_state_dir = true",
        f"[{cri}.containerd]", '  snapshotter = "overlayfs"', '  default_runtime_name = "runc"',
        f"[{cri}.containerd.runtimes.runc]", '  runtime_type = "io.containerd.runc.v2"',
        f"[{cri}.containerd.runtimes.runc.options]",
        f'  BinaryName = "{RUNC_BIN}"', "  SystemdCgroup = false",
        f"[{cri}.cni]", f'  bin_dir = "{CNI_BIN_DIR}"', f'  conf_dir = "{cni_conf}"',
    ]
    mirrors = dict(options.mirrors)
    for host in options.plain_http_registries:
        mirrors.setdefault(host, (f"http://{host}",))
    for host, endpoints in mirrors.items():
        lines += [f'[{cri}.registry.mirrors."{host}"]',
                  f"  endpoint = {json.dumps(list(endpoints))}"]
    path = workdir / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _cni(workdir: Path, options: ContainerdOptions) -> dict[str, object]:
    return {
        "cniVersion": "1.0.0",
        "name": "crt-rig-bench",
        "plugins": [
            {"type": "bridge", "bridge": options.bridge, "isGateway": True, "ipMasq": False,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": options.subnet}]],
                      "dataDir": str(workdir / "cni-ipam")}},
            {"type": "loopback"},
        ],
    }


def _wait_ready(handle: Containerd, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ContainerdError(f"containerd exited with {proc.returncode}:\n{_tail(handle)}")
        if handle.socket.exists():
            with CriClient(handle.socket, timeout=2) as client:
                try:
                    client.version()
                    return
                except grpc.RpcError:
                    pass
        time.sleep(0.1)
    raise ContainerdError(f"containerd's CRI did not answer in {START_TIMEOUT}s:\n{_tail(handle)}")


def _stop(proc: subprocess.Popen[bytes], handle: Containerd) -> None:
    if proc.poll() is None:
        _remove_pods(handle)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for pid in _shim_pids(handle.socket):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _remove_bridge(handle.bridge)


def _remove_bridge(name: str) -> None:
    """The CNI bridge plugin creates the bridge on first pod and never deletes it."""
    if Path(f"/sys/class/net/{name}").exists():
        subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


def _remove_pods(handle: Containerd) -> None:
    """Stop and remove every pod so runc containers and netns go away with their shims."""
    with CriClient(handle.socket, timeout=30) as client, contextlib.suppress(grpc.RpcError):
        pods = client.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items
        for pod in pods:
            client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod.id))
            client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id))


def _shim_pids(socket: Path) -> list[int]:
    """PIDs of containerd-shim processes started with `-address <our socket>`."""
    needle = str(socket).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"containerd-shim" in cmdline and needle in cmdline.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def _remove_tree(workdir: Path) -> None:
    """Unmount (lazily, deepest first) whatever is mounted under `workdir`, then delete it."""
    for mountpoint in sorted(_mounts_under(workdir), key=len, reverse=True):
        subprocess.run(["umount", "-l", mountpoint], check=False, capture_output=True)
    shutil.rmtree(workdir, ignore_errors=True)


def _mounts_under(workdir: Path) -> list[str]:
    prefix = str(workdir.resolve()) + "/"
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mountpoint = line.split()[4].replace("\\040", " ")
        if mountpoint.startswith(prefix):
            found.append(mountpoint)
    return found


def _tail(handle: Containerd) -> str:
    try:
        return handle.log_path.read_text(errors="replace")[-3000:]
    except OSError:
        return "(no log)"
