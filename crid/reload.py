"""What a configuration reload (SIGHUP) may change in a running daemon, and what needs a restart.

Reloadable: the log level and format, how registries are reached (mirrors, insecure hosts,
short-name registries, the auth file, the certificates directory), pinned images, metrics
on/off and their address, and tracing (on/off, endpoint, sampling rate). Everything else
(directories, sockets, the network, cgroups, the streaming server, the Docker API, download
parallelism) is wired into objects built once at start-up; a changed value is reported as
needing a restart and the running value stays.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from crid.config import Config

RELOADABLE = frozenset({
    "log_level", "log_format",
    "images.short_name_registries", "images.auth_file", "images.certs_dir", "images.pinned",
    "images.registries",
    "metrics.enable", "metrics.listen",
    "tracing.enable", "tracing.endpoint", "tracing.sampling_rate",
})


@dataclass(frozen=True)
class ReloadPlan:
    """`effective`: the running configuration after the reload (the new values of reloadable
    keys, the old values of the rest); `applied` and `restart` name the changed keys."""

    effective: Config
    applied: tuple[str, ...]
    restart: tuple[str, ...]


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the options whose values differ (a table of registries is one key)."""
    out = []
    for f in dataclasses.fields(old):
        a, b = getattr(old, f.name), getattr(new, f.name)
        name = prefix + f.name
        if dataclasses.is_dataclass(a):
            out += changed_keys(a, b, name + ".")
        elif a != b:
            out.append(name)
    return out


def plan(old: Config, new: Config) -> ReloadPlan:
    """Splits the differences between the running and the new configuration."""
    changed = changed_keys(old, new)
    applied = tuple(k for k in changed if k in RELOADABLE)
    effective = old
    for key in applied:
        effective = _with(effective, key.split("."), _get(new, key.split(".")))
    return ReloadPlan(effective, applied, tuple(k for k in changed if k not in RELOADABLE))


def _get(obj: Any, path: list[str]) -> Any:
    for part in path:
        obj = getattr(obj, part)
    return obj


def _with(obj: Any, path: list[str], value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: value})
    inner = _with(getattr(obj, path[0]), path[1:], value)
    return dataclasses.replace(obj, **{path[0]: inner})
