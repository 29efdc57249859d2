"""Typed, validated form of OCI ``linux.resources`` (config-linux.md, "Control groups").

``Resources.from_oci`` is pure: it checks types and ranges and raises ``SpecError`` naming the
field (``linux.resources.memory.limit``). ``None`` means "not set: leave the cgroup as it is".
Value conventions follow runc: for memory and swap, -1 means unlimited; for pids, a limit <= 0
other than absent means unlimited ("max").
"""

from __future__ import annotations

import re
from typing import Any

from runtime.errors import SpecError
from runtime.records import dataclass, field, replace

FIELD = "linux.resources"
I64 = (-(1 << 63), (1 << 63) - 1)
U64 = (0, (1 << 64) - 1)
# Patterns stay strings, compiled by re on first use (and cached there): compiling
# them at import would cost every CLI call.
_CPU_LIST = r"^\s*(\d+(-\d+)?)(,\d+(-\d+)?)*\s*$"
_PAGE_SIZE = r"^(\d+)(KB|MB|GB|TB|PB)$"
_IFACE = r"^[^\s/]{1,15}$"


@dataclass(frozen=True)
class Memory:
    limit: int | None = None  # bytes, -1 unlimited
    reservation: int | None = None  # soft limit (v1) / memory.low (v2)
    swap: int | None = None  # memory + swap (runc semantics), -1 unlimited
    kernel: int | None = None  # deprecated; ignored like runc >= 1.1 does
    kernel_tcp: int | None = None
    swappiness: int | None = None  # 0..100
    disable_oom_killer: bool | None = None
    use_hierarchy: bool | None = None
    check_before_update: bool | None = None  # refuse a limit below current usage


@dataclass(frozen=True)
class Cpu:
    shares: int | None = None  # v1 cpu.shares 2..262144 (v2: converted to cpu.weight)
    quota: int | None = None  # microseconds per period, -1 unlimited
    burst: int | None = None
    period: int | None = None  # microseconds
    realtime_runtime: int | None = None
    realtime_period: int | None = None
    cpus: str | None = None  # cpuset list "0-3,6"
    mems: str | None = None
    idle: int | None = None


@dataclass(frozen=True)
class Pids:
    limit: int | None = None


@dataclass(frozen=True)
class WeightDevice:
    major: int
    minor: int
    weight: int | None = None
    leaf_weight: int | None = None


@dataclass(frozen=True)
class ThrottleDevice:
    major: int
    minor: int
    rate: int


@dataclass(frozen=True)
class BlockIO:
    weight: int | None = None  # 10..1000
    leaf_weight: int | None = None
    weight_device: tuple[WeightDevice, ...] = ()
    throttle_read_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_read_iops_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_iops_device: tuple[ThrottleDevice, ...] = ()


@dataclass(frozen=True)
class HugepageLimit:
    page_size: str  # "2MB", "1GB" (the hugetlb file name's spelling)
    limit: int


@dataclass(frozen=True)
class Network:
    class_id: int | None = None
    priorities: tuple[tuple[str, int], ...] = ()  # (interface, priority)


@dataclass(frozen=True)
class DeviceRule:
    """A device cgroup rule; ``major``/``minor`` None mean any (``*``)."""

    allow: bool
    type: str = "a"  # a (all), b (block), c (char)
    major: int | None = None
    minor: int | None = None
    access: str = "rwm"

    def v1_line(self) -> str:
        """The rule as written to devices.allow / devices.deny: ``c 1:3 rwm``, ``a *:* rwm``."""
        def num(n: int | None) -> str:
            return "*" if n is None else str(n)
        return f"{self.type} {num(self.major)}:{num(self.minor)} {self.access}"


@dataclass(frozen=True)
class Resources:
    memory: Memory | None = None
    cpu: Cpu | None = None
    pids: Pids | None = None
    block_io: BlockIO | None = None
    hugepage_limits: tuple[HugepageLimit, ...] = ()
    network: Network | None = None
    devices: tuple[DeviceRule, ...] = ()
    unified: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def from_oci(d: Any, path: str = FIELD) -> Resources:
        """Parse an OCI ``linux.resources`` object (``None`` gives empty Resources).

        Unknown properties are ignored as config.md requires; ``rdma`` is refused when
        non-empty (no rdma controller support).

        Raises:
            SpecError: naming the first invalid field.
        """
        if d is None:
            return Resources()
        r = _obj(d, path)
        if r.get("rdma"):
            raise SpecError(f"{path}.rdma", "rdma cgroup limits are not supported")
        return Resources(
            memory=_opt(r, "memory", path, _memory),
            cpu=_opt(r, "cpu", path, _cpu),
            pids=_opt(r, "pids", path, _pids),
            block_io=_opt(r, "blockIO", path, _block_io),
            hugepage_limits=tuple(_hugepage(x, f"{path}.hugepageLimits[{i}]")
                                  for i, x in enumerate(_list(r, "hugepageLimits", path))),
            network=_opt(r, "network", path, _network),
            devices=tuple(device_rule(x, f"{path}.devices[{i}]")
                          for i, x in enumerate(_list(r, "devices", path))),
            unified=_unified(r.get("unified"), f"{path}.unified"),
        )


def _obj(v: Any, path: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise SpecError(path, f"must be an object, not {type(v).__name__}")
    return v


def _list(d: dict[str, Any], key: str, path: str) -> list[Any]:
    v = d.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise SpecError(f"{path}.{key}", f"must be an array, not {type(v).__name__}")
    return v


def _opt(d: dict[str, Any], key: str, path: str, parse: Any) -> Any:
    v = d.get(key)
    return None if v is None else parse(_obj(v, f"{path}.{key}"), f"{path}.{key}")


def _int(d: dict[str, Any], key: str, path: str, lo: int, hi: int) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise SpecError(f"{path}.{key}", f"must be an integer from {lo} to {hi}, not {v!r}")
    return v


def _req_int(d: dict[str, Any], key: str, path: str, lo: int, hi: int) -> int:
    v = _int(d, key, path, lo, hi)
    if v is None:
        raise SpecError(f"{path}.{key}", "required")
    return v


def _bool(d: dict[str, Any], key: str, path: str) -> bool | None:
    v = d.get(key)
    if v is not None and not isinstance(v, bool):
        raise SpecError(f"{path}.{key}", f"must be a boolean, not {v!r}")
    return v


def _memory(d: dict[str, Any], p: str) -> Memory:
    m = Memory(limit=_int(d, "limit", p, *I64), reservation=_int(d, "reservation", p, *I64),
               swap=_int(d, "swap", p, *I64), kernel=_int(d, "kernel", p, *I64),
               kernel_tcp=_int(d, "kernelTCP", p, *I64),
               swappiness=_int(d, "swappiness", p, *U64),
               disable_oom_killer=_bool(d, "disableOOMKiller", p),
               use_hierarchy=_bool(d, "useHierarchy", p),
               check_before_update=_bool(d, "checkBeforeUpdate", p))
    for key, v in (("limit", m.limit), ("reservation", m.reservation), ("swap", m.swap)):
        if v is not None and v < -1:
            raise SpecError(f"{p}.{key}", f"must be -1 (unlimited) or a byte count, not {v}")
    if m.swappiness is not None and m.swappiness > 100:
        raise SpecError(f"{p}.swappiness", f"must be from 0 to 100, not {m.swappiness}")
    if m.limit and m.swap and m.limit > 0 and 0 < m.swap < m.limit:
        raise SpecError(f"{p}.swap", f"memory+swap limit {m.swap} is below the memory limit "
                                     f"{m.limit}")
    return m


def _cpu(d: dict[str, Any], p: str) -> Cpu:
    c = Cpu(shares=_int(d, "shares", p, *U64), quota=_int(d, "quota", p, *I64),
            burst=_int(d, "burst", p, *U64), period=_int(d, "period", p, *U64),
            realtime_runtime=_int(d, "realtimeRuntime", p, *I64),
            realtime_period=_int(d, "realtimePeriod", p, *U64),
            cpus=_cpu_list(d, "cpus", p), mems=_cpu_list(d, "mems", p),
            idle=_int(d, "idle", p, *I64))
    if c.period is not None and c.period != 0 and not 1000 <= c.period <= 1_000_000:
        raise SpecError(f"{p}.period", f"must be from 1000 to 1000000 µs, not {c.period}")
    if c.quota is not None and c.quota not in (-1, 0) and c.quota < 1000:
        raise SpecError(f"{p}.quota", f"must be -1 (unlimited) or at least 1000 µs, not {c.quota}")
    return c


def _cpu_list(d: dict[str, Any], key: str, p: str) -> str | None:
    v = d.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str) or not re.match(_CPU_LIST, v):
        raise SpecError(f"{p}.{key}", f"must be a list like '0-3,6', not {v!r}")
    return v.strip()


def _pids(d: dict[str, Any], p: str) -> Pids:
    return Pids(limit=_int(d, "limit", p, *I64))


def _block_io(d: dict[str, Any], p: str) -> BlockIO:
    def weight(x: dict[str, Any], key: str, q: str) -> int | None:
        w = _int(x, key, q, 0, 1000)
        if w is not None and w != 0 and w < 10:
            raise SpecError(f"{q}.{key}", f"must be from 10 to 1000, not {w}")
        return w

    def throttle(key: str) -> tuple[ThrottleDevice, ...]:
        return tuple(ThrottleDevice(_req_int(x, "major", q, *I64), _req_int(x, "minor", q, *I64),
                                    _req_int(x, "rate", q, *U64))
                     for i, x0 in enumerate(_list(d, key, p))
                     for q in [f"{p}.{key}[{i}]"] for x in [_obj(x0, q)])

    wd = []
    for i, x0 in enumerate(_list(d, "weightDevice", p)):
        q = f"{p}.weightDevice[{i}]"
        x = _obj(x0, q)
        wd.append(WeightDevice(_req_int(x, "major", q, *I64), _req_int(x, "minor", q, *I64),
                               weight(x, "weight", q), weight(x, "leafWeight", q)))
    return BlockIO(weight=weight(d, "weight", p), leaf_weight=weight(d, "leafWeight", p),
                   weight_device=tuple(wd),
                   throttle_read_bps_device=throttle("throttleReadBpsDevice"),
                   throttle_write_bps_device=throttle("throttleWriteBpsDevice"),
                   throttle_read_iops_device=throttle("throttleReadIOPSDevice"),
                   throttle_write_iops_device=throttle("throttleWriteIOPSDevice"))


def _hugepage(v: Any, p: str) -> HugepageLimit:
    d = _obj(v, p)
    size = d.get("pageSize")
    if not isinstance(size, str) or not re.match(_PAGE_SIZE, size):
        raise SpecError(f"{p}.pageSize", f"must look like '2MB' or '1GB', not {size!r}")
    return HugepageLimit(size, _req_int(d, "limit", p, *U64))


def _network(d: dict[str, Any], p: str) -> Network:
    prios = []
    for i, x0 in enumerate(_list(d, "priorities", p)):
        q = f"{p}.priorities[{i}]"
        x = _obj(x0, q)
        name = x.get("name")
        if not isinstance(name, str) or not re.match(_IFACE, name):
            raise SpecError(f"{q}.name", f"not an interface name: {name!r}")
        prios.append((name, _req_int(x, "priority", q, 0, (1 << 32) - 1)))
    return Network(class_id=_int(d, "classID", p, 0, (1 << 32) - 1), priorities=tuple(prios))


# runc's AllowedDevices (libcontainer/specconv), appended after a spec's own device rules: the
# nodes every container gets (runtime-spec "Default Devices", /dev/console, /dev/pts, /dev/ptmx,
# /dev/net/tun) stay usable, and mknod of any node is allowed (its use is what is checked).
ALLOWED_DEVICES = (
    DeviceRule(True, "c", None, None, "m"), DeviceRule(True, "b", None, None, "m"),
    DeviceRule(True, "c", 1, 3), DeviceRule(True, "c", 1, 8), DeviceRule(True, "c", 1, 7),
    DeviceRule(True, "c", 5, 0), DeviceRule(True, "c", 1, 5), DeviceRule(True, "c", 1, 9),
    DeviceRule(True, "c", 5, 1), DeviceRule(True, "c", 136, None), DeviceRule(True, "c", 5, 2),
    DeviceRule(True, "c", 10, 200),
)


def with_allowed_devices(resources: Resources) -> Resources:
    """``resources`` for a new container, as runc makes them: where the spec restricts devices,
    runc's allowed devices follow its rules (last match wins). A spec without device rules
    leaves the devices cgroup alone."""
    if not resources.devices:
        return resources
    return replace(resources, devices=resources.devices + ALLOWED_DEVICES)


def device_rule(v: Any, p: str) -> DeviceRule:
    """Parse one ``linux.resources.devices[]`` entry. Raises SpecError naming the field."""
    d = _obj(v, p)
    allow = d.get("allow")
    if not isinstance(allow, bool):
        raise SpecError(f"{p}.allow", f"required boolean, not {allow!r}")
    kind = d.get("type", "a") or "a"
    if kind not in ("a", "b", "c"):
        raise SpecError(f"{p}.type", f"must be 'a', 'b' or 'c', not {kind!r}")
    access = d.get("access", "rwm") or "rwm"
    if not isinstance(access, str) or not access or set(access) - set("rwm") \
            or len(set(access)) != len(access):
        raise SpecError(f"{p}.access", f"must be letters from 'rwm', not {access!r}")
    major, minor = (_int(d, k, p, -1, (1 << 32) - 1) for k in ("major", "minor"))
    return DeviceRule(allow, kind, None if major in (None, -1) else major,
                      None if minor in (None, -1) else minor, access)


def _unified(v: Any, p: str) -> dict[str, str]:
    if v is None:
        return {}
    d = _obj(v, p)
    out = {}
    for key, val in d.items():
        if not isinstance(val, str):
            raise SpecError(f"{p}.{key}", f"must be a string, not {val!r}")
        # A key is a file of the cgroup directory: never a path, never a cgroup core file
        # that moves processes or changes the tree.
        if "/" in key or key in ("", ".", "..") or "." not in key:
            raise SpecError(f"{p}.{key}", "not a cgroup interface file name")
        if key.startswith("cgroup.") and key not in ("cgroup.max.depth",
                                                      "cgroup.max.descendants"):
            raise SpecError(f"{p}.{key}", "cgroup core files cannot be set")
        out[key] = val
    return out
