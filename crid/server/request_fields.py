"""What a CRI request is about, for the log line of a failed call: ids, names, the image."""

from __future__ import annotations

from typing import Any

_IDS = {"pod_sandbox_id": "pod_id", "container_id": "container_id"}


def identify(request: Any) -> dict[str, str]:
    """The request's identifying fields (pod/container id and name, image), empty ones left out.

    Works from field names and message types, so every RPC's request is covered without a
    table per method: `config` is a ContainerConfig or a PodSandboxConfig, `image` an ImageSpec.
    """
    found: dict[str, str] = {}
    for name, key in _IDS.items():
        value = getattr(request, name, "")
        if isinstance(value, str) and value:
            found[key] = value
    for name in ("config", "sandbox_config"):
        if _has(request, name):
            _from_config(getattr(request, name), found)
    if _has(request, "image"):
        _put(found, "image", request.image.image)
    return found


def _from_config(config: Any, found: dict[str, str]) -> None:
    kind = config.DESCRIPTOR.name
    if kind == "PodSandboxConfig" and _has(config, "metadata"):
        meta = config.metadata
        _put(found, "pod", f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name)
    elif kind == "ContainerConfig":
        if _has(config, "metadata"):
            _put(found, "container", config.metadata.name)
        if _has(config, "image"):
            _put(found, "image", config.image.image)


def _has(message: Any, name: str) -> bool:
    fields = message.DESCRIPTOR.fields_by_name
    return name in fields and fields[name].message_type is not None and message.HasField(name)


def _put(found: dict[str, str], key: str, value: str) -> None:
    if value and key not in found:
        found[key] = value
