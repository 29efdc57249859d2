"""Running one CNI plugin binary (CNI spec, section "Execution protocol")."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any

from crid.network.errors import CNIPluginError, NetworkSetupFailed

MAX_OUTPUT = 4 << 20


@dataclass(frozen=True)
class CniArgs:
    """The per-call environment: ``CNI_CONTAINERID``, ``CNI_NETNS``, ``CNI_IFNAME``,
    ``CNI_ARGS`` (k8s pod identity), ``CNI_PATH``."""

    container_id: str
    netns: str
    ifname: str
    args: str
    path: tuple[str, ...]

    def env(self, command: str) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command, "CNI_CONTAINERID": self.container_id,
            "CNI_NETNS": self.netns, "CNI_IFNAME": self.ifname, "CNI_ARGS": self.args,
            "CNI_PATH": ":".join(self.path),
        }


def k8s_args(namespace: str, name: str, pod_id: str, uid: str) -> str:
    """CNI_ARGS as the kubelet's runtimes pass them (plugins ignore what they don't know)."""
    return ";".join([
        "IgnoreUnknown=1", f"K8S_POD_NAMESPACE={namespace}", f"K8S_POD_NAME={name}",
        f"K8S_POD_INFRA_CONTAINER_ID={pod_id}", f"K8S_POD_UID={uid}"])


def find_plugin(plugin_type: str, bin_dirs: tuple[str, ...]) -> str:
    for d in bin_dirs:
        p = os.path.join(d, plugin_type)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise NetworkSetupFailed(f"CNI plugin {plugin_type!r} not found in {list(bin_dirs)}")


def _plugin_error(plugin: str, command: str, proc: subprocess.CompletedProcess) -> Exception:
    try:
        err = json.loads(proc.stdout)
        return CNIPluginError(plugin, command, int(err.get("code", 0)), str(err.get("msg", "")),
                              str(err.get("details", "")))
    except (ValueError, AttributeError, TypeError):
        text = (proc.stderr or proc.stdout or b"").decode(errors="replace").strip()[:2000]
        return CNIPluginError(plugin, command, -1, f"exit status {proc.returncode}", text)


def run_plugin(plugin_type: str, command: str, conf: dict[str, Any], args: CniArgs,
               timeout: float) -> dict[str, Any] | None:
    """Run ``plugin_type`` with ``conf`` on stdin. Returns the parsed JSON result (None for
    an empty output, as DEL gives). Raises CNIPluginError with the plugin's error object,
    NetworkSetupFailed when it cannot run, times out or prints no JSON."""
    path = find_plugin(plugin_type, args.path)
    try:
        proc = subprocess.run([path], input=json.dumps(conf).encode(), env=args.env(command),
                              capture_output=True, timeout=timeout, close_fds=True)
    except subprocess.TimeoutExpired as e:
        raise NetworkSetupFailed(
            f"CNI plugin {plugin_type!r} {command} timed out after {timeout}s") from e
    except OSError as e:
        raise NetworkSetupFailed(f"running CNI plugin {path} {command}: {e}") from e
    if proc.returncode:
        raise _plugin_error(plugin_type, command, proc)
    out = proc.stdout[:MAX_OUTPUT].strip()
    if not out:
        return None
    try:
        result = json.loads(out)
    except ValueError as e:
        raise NetworkSetupFailed(
            f"CNI plugin {plugin_type!r} {command}: output is not JSON: {out[:200]!r}") from e
    if not isinstance(result, dict):
        raise NetworkSetupFailed(f"CNI plugin {plugin_type!r} {command}: result not an object")
    return result
