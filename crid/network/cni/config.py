"""CNI network configuration: finding and parsing the conf dir (CNI spec 1.0/1.1, section
"Configuration format").

As libcni, CRI-O and containerd do, the lexically first ``*.conflist`` / ``*.conf`` /
``*.json`` file that parses is the pod network; a single-plugin ``.conf`` becomes a list of
one.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from crid.network.errors import InvalidNetworkConfig

EXTENSIONS = (".conflist", ".conf", ".json")
MAX_CONFIG_BYTES = 1 << 20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class NetworkConfigList:
    name: str
    cni_version: str
    plugins: tuple[dict[str, Any], ...]
    disable_check: bool = False
    path: str = ""


def version_tuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in v.split("."))
    except ValueError:
        return (0,)


def parse_config(data: bytes | str, path: str = "<memory>") -> NetworkConfigList:
    """Parse one config file's content. Raises InvalidNetworkConfig naming the file."""
    try:
        raw = json.loads(data)
    except ValueError as e:
        raise InvalidNetworkConfig(f"CNI config {path}: not JSON: {e}") from e
    if not isinstance(raw, dict):
        raise InvalidNetworkConfig(f"CNI config {path}: not a JSON object")
    if "plugins" not in raw:  # a single-plugin .conf
        if "type" not in raw:
            raise InvalidNetworkConfig(f"CNI config {path}: neither plugins nor type")
        raw = {"name": raw.get("name"), "cniVersion": raw.get("cniVersion"),
               "plugins": [{k: v for k, v in raw.items() if k not in ("name", "cniVersion")}]}
    name, version, plugins = raw.get("name"), raw.get("cniVersion"), raw.get("plugins")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidNetworkConfig(f"CNI config {path}: invalid network name {name!r}")
    if not isinstance(version, str) or version_tuple(version) == (0,):
        raise InvalidNetworkConfig(f"CNI config {path}: invalid cniVersion {version!r}")
    if not isinstance(plugins, list) or not plugins:
        raise InvalidNetworkConfig(f"CNI config {path}: plugins must be a non-empty list")
    for p in plugins:
        t = p.get("type") if isinstance(p, dict) else None
        if not isinstance(t, str) or not t or "/" in t or t.startswith("."):
            raise InvalidNetworkConfig(f"CNI config {path}: invalid plugin type {t!r}")
    return NetworkConfigList(name, version, tuple(plugins), bool(raw.get("disableCheck")), path)


def config_files(conf_dir: str) -> list[str]:
    try:
        names = sorted(os.listdir(conf_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [os.path.join(conf_dir, n) for n in names if n.endswith(EXTENSIONS)]


def find_config(conf_dir: str) -> NetworkConfigList | None:
    """The first valid config in ``conf_dir``; None when there is none. Raises
    InvalidNetworkConfig when files exist but none is valid (naming the first's error)."""
    first_error: InvalidNetworkConfig | None = None
    for path in config_files(conf_dir):
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_CONFIG_BYTES + 1)
            if len(data) > MAX_CONFIG_BYTES:
                raise InvalidNetworkConfig(f"CNI config {path}: larger than 1 MiB")
            return parse_config(data, path)
        except OSError as e:
            first_error = first_error or InvalidNetworkConfig(f"CNI config {path}: {e}")
        except InvalidNetworkConfig as e:
            first_error = first_error or e
    if first_error:
        raise first_error
    return None


def has_config(conf_dir: str) -> bool:
    return bool(config_files(conf_dir))
