"""Ready-made test images built from Debian's static busybox (`/bin/busybox`).

- `busybox_layer()`: /bin/busybox, applet symlinks, /etc/passwd|group, /tmp, /root;
- `busybox_image()`: that layer plus a config running `sh`;
- `pause_image()`: the sandbox image for containerd (sleeps until TERM/INT, exits 0);
- `kitchen_sink_image()`: three layers (gzip, zstd, none) exercising modes, owners, xattrs
  (with `security.capability`), hard links, symlinks, devices, fifos, whiteouts, opaque dirs;
- `multiarch_index()`: amd64 + arm64 + arm/v7 (non-native entries carry dummy layers);
- `big_image()`: ~200 MB over 8 layers of half-random data, for the pull benchmark.
"""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path

from tests.rig import layers as L
from tests.rig.images import (
    BuiltImage,
    BuiltIndex,
    ImageConfig,
    ImageSpec,
    Platform,
    build_image,
    build_index,
    native_platform,
)

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "ash", "cat", "echo", "env", "false", "hostname", "id", "kill", "ls", "mkdir",
           "ps", "rm", "sleep", "stat", "test", "touch", "true", "wc", "wget", "nc", "mount")
PAUSE_SCRIPT = 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait; done'
CAP_NET_BIND_SERVICE = 10
MiB = 1024 * 1024


@cache
def busybox_bytes() -> bytes:
    return BUSYBOX.read_bytes()


def busybox_layer(compression: str = "gzip") -> L.LayerSpec:
    """A minimal root filesystem around the static busybox."""
    entries = [
        L.directory("bin"), L.file("bin/busybox", busybox_bytes(), 0o755),
        *(L.symlink(f"bin/{name}", "busybox") for name in APPLETS),
        L.directory("etc"),
        L.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                             b"crt:x:1000:1000:crt:/home/crt:/bin/sh\n"
                             b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        L.file("etc/group", b"root:x:0:\ncrt:x:1000:\nnogroup:x:65534:\n"),
        L.directory("tmp", 0o1777), L.directory("root", 0o700),
        L.directory("home/crt", 0o755, 1000, 1000),
        L.directory("dev"), L.directory("proc"), L.directory("sys"),
    ]
    return L.LayerSpec(tuple(entries), compression)


def busybox_image(fmt: str = "oci", compression: str = "gzip",
                  config: ImageConfig | None = None) -> BuiltImage:
    return build_image(ImageSpec(
        (busybox_layer(compression),),
        config or ImageConfig(cmd=("/bin/sh",)),
        format=fmt,
    ))


def pause_image(fmt: str = "oci") -> BuiltImage:
    """Busybox sh that waits forever and exits 0 on TERM/INT: containerd's sandbox image."""
    return build_image(ImageSpec(
        (busybox_layer(),),
        ImageConfig(entrypoint=("/bin/sh", "-c", PAUSE_SCRIPT), stop_signal="SIGTERM",
                    labels={"io.crid.rig": "pause"}),
        format=fmt,
    ))


def kitchen_sink_layers() -> tuple[L.LayerSpec, ...]:
    """Busybox, then a layer with every entry kind (zstd), then whiteouts/opaque (none)."""
    rich = (
        L.directory("data", 0o750, 1000, 1000),
        L.file("data/owned", b"owned by crt\n", 0o640, 1000, 1000),
        L.file("data/setuid", b"#!/bin/sh\n", 0o4755),
        L.file("data/sticky-none", b"", 0o000),
        L.file("data/xattr", b"x\n", 0o644, xattrs={"user.crt.note": b"hello",
                                                   "trusted.crt": b"\x00\x01binary"}),
        L.file("data/cap", busybox_bytes()[:4096], 0o755,
               xattrs={"security.capability": L.file_capability(CAP_NET_BIND_SERVICE)}),
        L.file("data/big", bytes(range(256)) * 4096),
        L.hardlink("data/hardlink", "data/owned"),
        L.symlink("data/rel-link", "owned"),
        L.symlink("data/abs-link", "/etc/passwd"),
        L.symlink("data/dangling", "/nonexistent/target"),
        L.char_device("data/null", 1, 3),
        L.block_device("data/loop", 7, 200),
        L.fifo("data/fifo", 0o600),
        L.directory("gone"), L.file("gone/a", b"a"), L.file("gone/b", b"b"),
        L.directory("opaque-dir"), L.file("opaque-dir/lower", b"lower"),
        L.file("etc/motd", b"layer two\n", mtime=1_600_000_000),
    )
    changes = (
        L.whiteout("gone"),
        L.whiteout("data/big"),
        L.whiteout("bin/wget"),
        L.opaque("opaque-dir"), L.file("opaque-dir/upper", b"upper"),
        L.file("etc/motd", b"layer three replaces it\n", 0o600),
        L.directory("work", 0o1777),
    )
    return (busybox_layer("gzip"), L.LayerSpec(rich, "zstd"), L.LayerSpec(changes, "none"))


def kitchen_sink_image(fmt: str = "oci") -> BuiltImage:
    """Every entry kind and config field. Docker format gets gzip layers instead of zstd."""
    layer_specs = kitchen_sink_layers()
    if fmt == "docker":
        layer_specs = tuple(L.LayerSpec(s.entries, "gzip") for s in layer_specs)
    config = ImageConfig(
        entrypoint=("/bin/sh", "-c"), cmd=("echo hello from crt-rig",),
        env=("PATH=/bin", "CRT_RIG=1", "EMPTY="), working_dir="/work", user="1000:1000",
        stop_signal="SIGINT", exposed_ports=("8080/tcp", "53/udp"), volumes=("/data",),
        labels={"org.example.rig": "kitchen-sink", "empty": ""},
    )
    return build_image(ImageSpec(layer_specs, config, format=fmt,
                                 annotations={"org.opencontainers.image.title": "kitchen-sink"}))


def multiarch_index(fmt: str = "oci") -> BuiltIndex:
    """amd64, arm64 and arm/v7 entries; only the native one carries real busybox."""
    wanted = [Platform(architecture="amd64"), Platform(architecture="arm64"),
              Platform(architecture="arm", variant="v7")]
    images = []
    for plat in wanted:
        if plat == native_platform():
            layer = busybox_layer()
        else:
            layer = L.LayerSpec((L.file("ARCH", f"{plat.architecture}{plat.variant}\n".encode()),))
        images.append(build_image(ImageSpec((layer,), ImageConfig(cmd=("/bin/sh",)),
                                            plat, format=fmt)))
    return build_index(images, fmt)


def big_image(total_bytes: int = 200 * MiB, layer_count: int = 8, seed: int = 0,
              variant: int = 0, fmt: str = "oci", compression: str = "gzip") -> BuiltImage:
    """`layer_count` layers of 1 MiB files, half random and half text, ~`total_bytes` in all.
    Images with the same `seed` and different `variant` share all layers but the last."""
    per_layer = max(total_bytes // layer_count, 1)
    specs = []
    for index in range(layer_count):
        last = index == layer_count - 1
        rng = random.Random(f"{seed}/{index}/{variant if last else 0}")
        specs.append(L.LayerSpec(_big_layer_entries(rng, index, per_layer), compression))
    return build_image(ImageSpec(tuple(specs), ImageConfig(cmd=("/bin/true",)), format=fmt))


def _big_layer_entries(rng: random.Random, index: int, size: int) -> tuple[L.Entry, ...]:
    entries = []
    text = b"crt-rig big image filler line, compressible on purpose.\n" * (MiB // 112 + 1)
    remaining, n = size, 0
    while remaining > 0:
        chunk = min(MiB, remaining)
        half = chunk // 2
        data = rng.randbytes(half) + text[: chunk - half]
        entries.append(L.file(f"big/layer{index}/file{n:04d}", data))
        remaining -= chunk
        n += 1
    return tuple(entries)
