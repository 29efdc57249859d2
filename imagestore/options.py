"""Options of the image store: the `[images]` configuration table, as one frozen dataclass.

Each field's metadata carries its TOML key and help text so that the daemon's config loader can
generate its template and flags from it; this module never reads files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

MiB = 1 << 20
GiB = 1 << 30


def _opt(default: object, help: str, **kw: object) -> Any:
    if callable(default):
        return field(default_factory=default, metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class RegistryOptions:
    """`[images.registries."<host[:port]>"]`: mirrors and transport security of one registry."""

    mirrors: tuple[str, ...] = _opt((), "mirror URLs tried in order before the upstream; "
                                        "`http://` allowed only when written explicitly")
    insecure: bool = _opt(False, "allow plain HTTP and unverified TLS for this host")


@dataclass(frozen=True)
class ImageStoreOptions:
    """`[images]`: where images live, how registries are reached, and the safety limits."""

    root: Path = _opt(Path("/var/lib/crid/images"), "blobs, unpacked layers, image records")
    short_name_registries: tuple[str, ...] = _opt(("docker.io",),
                                                  "registries searched for unqualified names")
    auth_file: Path | None = _opt(Path("/etc/crid/auth.json"),
                                  "docker config.json-format credentials")
    certs_dir: Path = _opt(Path("/etc/crid/certs.d"),
                           "<host[:port]>/ca.crt, client.cert, client.key per registry")
    parallel_downloads: int = _opt(4, "layers downloaded and unpacked at once")
    pinned: tuple[str, ...] = _opt((), "images reported as pinned (never garbage-collected)")
    registries: Mapping[str, RegistryOptions] = _opt(lambda: MappingProxyType({}),
                                                     "per-registry options by host[:port]")
    # Limits and transport tuning (not in the table; defaults suit production).
    max_manifest_bytes: int = _opt(4 * MiB, "largest manifest or index accepted", toml=False)
    max_config_bytes: int = _opt(8 * MiB, "largest image config accepted", toml=False)
    max_layer_bytes: int = _opt(64 * GiB, "largest compressed layer accepted", toml=False)
    max_unpacked_bytes: int = _opt(256 * GiB, "largest uncompressed layer", toml=False)
    max_ratio: int = _opt(200, "largest uncompressed/compressed ratio past ratio_floor",
                          toml=False)
    ratio_floor: int = _opt(512 * MiB, "uncompressed size from which max_ratio applies",
                            toml=False)
    retries: int = _opt(4, "retries of a failing request (5xx, 429, broken connection)",
                        toml=False)
    backoff_seconds: float = _opt(0.5, "first retry delay, doubled each time", toml=False)
    max_retry_after: float = _opt(30.0, "cap on a server's Retry-After", toml=False)
    sync_layers: bool = _opt(False, "flush unpacked layers to disk (os.sync) before an image "
                                    "record names them: survives power loss, costs a flush",
                             toml=False)
    connect_timeout: float = _opt(10.0, "seconds to connect to a registry", toml=False)
    read_timeout: float = _opt(60.0, "seconds without a byte before a read fails", toml=False)

    def registry(self, host: str) -> RegistryOptions:
        """The options of `host` (`host[:port]`), defaults when not configured."""
        return self.registries.get(host) or RegistryOptions()
