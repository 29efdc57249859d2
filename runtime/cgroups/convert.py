"""``Resources`` -> the ordered interface-file writes for cgroup v1 and v2 (pure functions).

The v2 conversions are runc's (libcontainer/cgroups/utils.go and fs2/): cpu.weight from shares,
cpu.max from quota/period, memory.swap.max = (memory+swap) - memory, io.weight from the blkio
weight, io.max from the throttle lists, then ``unified`` keys last so they win.
"""

from __future__ import annotations

from runtime.cgroups.errors import CgroupError
from runtime.cgroups.resources import FIELD, Cpu, Resources, ThrottleDevice
from runtime.records import dataclass

DEFAULT_PERIOD_US = 100_000


@dataclass(frozen=True)
class Write:
    """Write ``value`` to ``file`` in the ``controller``'s directory; ``field`` is the OCI field
    it comes from (for error messages)."""

    controller: str
    file: str
    value: str
    field: str
    optional: bool = False  # skip when the kernel has no such file


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000], runc's linear map; 0 stays unset."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000] (runc's map); 0 stays unset."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def swap_to_v2(swap: int | None, memory: int | None) -> int | None:
    """OCI memory+swap -> memory.swap.max (swap alone); -1 unlimited, None unset.

    Raises:
        CgroupError: swap without a memory limit, or memory+swap below memory.
    """
    mem = memory or 0
    if mem == -1 and not swap:
        return -1  # unlimited memory and swap unset: unlimited both, as on v1
    if swap is None or swap in (0, -1):
        return None if not swap else -1
    if mem in (0, -1):
        raise CgroupError(f"{FIELD}.memory.swap: cannot set a swap limit without a memory limit")
    if swap < mem:
        raise CgroupError(f"{FIELD}.memory.swap: memory+swap {swap} is below memory {mem}")
    return swap - mem


def _max(v: int) -> str:
    return "max" if v == -1 else str(v)


def v2_writes(r: Resources, io_bfq: bool = False) -> list[Write]:
    """The cgroup2 writes for ``r`` (``io_bfq``: the io.bfq.weight file exists).

    Raises:
        CgroupError: a setting cgroup v2 has no file for (naming the field).
    """
    out: list[Write] = []
    out += _v2_cpu(r)
    out += _v2_memory(r)
    out += _pids(r)
    out += _v2_io(r, io_bfq)
    out += _hugetlb(r, "max", "rsvd.max")
    if r.network and (r.network.class_id or r.network.priorities):
        raise CgroupError(f"{FIELD}.network: net_cls/net_prio do not exist on cgroup v2")
    for key, value in r.unified.items():
        out.append(Write(key.split(".", 1)[0], key, value, f"{FIELD}.unified.{key}"))
    return out


def _pids(r: Resources) -> list[Write]:
    if not (r.pids and r.pids.limit):
        return []
    return [Write("pids", "pids.max", "max" if r.pids.limit < 0 else str(r.pids.limit),
                  f"{FIELD}.pids.limit")]


def _hugetlb(r: Resources, limit_file: str, rsvd_file: str) -> list[Write]:
    # The reservation limit (kernel >= 5.7) moves with the usage limit, as in runc.
    return [Write("hugetlb", f"hugetlb.{h.page_size}.{name}", str(h.limit),
                  f"{FIELD}.hugepageLimits", optional=name == rsvd_file)
            for h in r.hugepage_limits for name in (limit_file, rsvd_file)]


def _cpuset(c: Cpu, f: str) -> list[Write]:
    return ([Write("cpuset", "cpuset.cpus", c.cpus, f"{f}.cpus")] if c.cpus else []) + \
        ([Write("cpuset", "cpuset.mems", c.mems, f"{f}.mems")] if c.mems else [])


def _v2_cpu(r: Resources) -> list[Write]:
    c = r.cpu
    if c is None:
        return []
    f = f"{FIELD}.cpu"
    out = []
    if c.shares:
        out.append(Write("cpu", "cpu.weight", str(shares_to_weight(c.shares)), f"{f}.shares"))
    if c.quota or c.period:
        quota = c.quota if c.quota not in (None, 0) else -1
        out.append(Write("cpu", "cpu.max", f"{_max(quota)} {c.period or DEFAULT_PERIOD_US}",
                         f"{f}.quota"))
    if c.burst is not None:
        out.append(Write("cpu", "cpu.max.burst", str(c.burst), f"{f}.burst"))
    if c.idle is not None:
        out.append(Write("cpu", "cpu.idle", str(c.idle), f"{f}.idle"))
    if c.realtime_runtime or c.realtime_period:
        raise CgroupError(f"{f}.realtimeRuntime: realtime scheduling limits do not exist on "
                          "cgroup v2")
    return out + _cpuset(c, f)


def _v2_memory(r: Resources) -> list[Write]:
    m = r.memory
    if m is None:
        return []
    f = f"{FIELD}.memory"
    for name, v in (("swappiness", m.swappiness), ("kernelTCP", m.kernel_tcp)):
        if v is not None:
            raise CgroupError(f"{f}.{name}: not supported on cgroup v2")
    if m.disable_oom_killer:
        raise CgroupError(f"{f}.disableOOMKiller: not supported on cgroup v2")
    out = []
    swap = swap_to_v2(m.swap, m.limit)
    # Swap first: lowering memory.max never fails because of swap, and a new swap limit must
    # hold before memory moves (runc's order).
    if swap is not None:
        out.append(Write("memory", "memory.swap.max", _max(swap), f"{f}.swap"))
    if m.limit:
        out.append(Write("memory", "memory.max", _max(m.limit), f"{f}.limit"))
    if m.reservation:
        out.append(Write("memory", "memory.low", _max(m.reservation), f"{f}.reservation"))
    return out


def _v2_io(r: Resources, io_bfq: bool) -> list[Write]:
    b = r.block_io
    if b is None:
        return []
    f = f"{FIELD}.blockIO"
    if b.leaf_weight or any(d.leaf_weight for d in b.weight_device):
        raise CgroupError(f"{f}.leafWeight: not supported on cgroup v2")
    out = []
    name = "io.bfq.weight" if io_bfq else "io.weight"
    conv = (lambda w: w) if io_bfq else blkio_to_io_weight
    if b.weight:
        out.append(Write("io", name, f"default {conv(b.weight)}" if not io_bfq
                         else str(b.weight), f"{f}.weight"))
    for d in b.weight_device:
        if d.weight:
            out.append(Write("io", name, f"{d.major}:{d.minor} {conv(d.weight)}",
                             f"{f}.weightDevice"))
    for key, devs in (("rbps", b.throttle_read_bps_device), ("wbps", b.throttle_write_bps_device),
                      ("riops", b.throttle_read_iops_device),
                      ("wiops", b.throttle_write_iops_device)):
        out += _io_max(key, devs, f)
    return out


def _io_max(key: str, devs: tuple[ThrottleDevice, ...], f: str) -> list[Write]:
    # A rate of 0 means "no limit" in OCI; io.max spells that "max".
    return [Write("io", "io.max", f"{d.major}:{d.minor} {key}={d.rate or 'max'}", f"{f}.throttle")
            for d in devs]


def v1_writes(r: Resources, current_memory_limit: int, has_memsw: bool,
              weight_file: str | None) -> list[Write]:
    """The cgroup v1 writes for ``r``, ordered so the kernel accepts each one.

    ``current_memory_limit`` decides the memory/memsw order (memsw must stay >= memory at every
    step); ``weight_file`` is ``blkio.weight`` or ``blkio.bfq.weight``, whichever exists.

    Raises:
        CgroupError: unified keys (v2 only) or a setting this host has no file for.
    """
    if r.unified:
        raise CgroupError(f"{FIELD}.unified: set on a cgroup v1 host "
                          f"({', '.join(sorted(r.unified))}); unified keys need cgroup v2")
    out: list[Write] = []
    out += _v1_cpu(r)
    out += _v1_memory(r, current_memory_limit, has_memsw)
    out += _pids(r)
    out += _v1_blkio(r, weight_file)
    out += _hugetlb(r, "limit_in_bytes", "rsvd.limit_in_bytes")
    if r.network and r.network.class_id:
        out.append(Write("net_cls", "net_cls.classid", str(r.network.class_id),
                         f"{FIELD}.network.classID"))
    for name, prio in r.network.priorities if r.network else ():
        out.append(Write("net_prio", "net_prio.ifpriomap", f"{name} {prio}",
                         f"{FIELD}.network.priorities"))
    return out


def _v1_cpu(r: Resources) -> list[Write]:
    c = r.cpu
    if c is None:
        return []
    f = f"{FIELD}.cpu"
    out = []
    if c.shares:
        out.append(Write("cpu", "cpu.shares", str(c.shares), f"{f}.shares"))
    # Period before quota: the kernel checks quota against the period in force.
    if c.period:
        out.append(Write("cpu", "cpu.cfs_period_us", str(c.period), f"{f}.period"))
    if c.quota:
        out.append(Write("cpu", "cpu.cfs_quota_us", str(c.quota), f"{f}.quota"))
    if c.burst is not None:
        out.append(Write("cpu", "cpu.cfs_burst_us", str(c.burst), f"{f}.burst"))
    if c.realtime_period:
        out.append(Write("cpu", "cpu.rt_period_us", str(c.realtime_period),
                         f"{f}.realtimePeriod"))
    if c.realtime_runtime:
        out.append(Write("cpu", "cpu.rt_runtime_us", str(c.realtime_runtime),
                         f"{f}.realtimeRuntime"))
    if c.idle is not None:
        out.append(Write("cpu", "cpu.idle", str(c.idle), f"{f}.idle"))
    return out + _cpuset(c, f)


def _v1_memory(r: Resources, current_limit: int, has_memsw: bool) -> list[Write]:
    m = r.memory
    if m is None:
        return []
    f = f"{FIELD}.memory"
    limit, swap = m.limit or 0, m.swap or 0
    if limit == -1 and swap == 0 and has_memsw:
        swap = -1  # unlimited memory, swap unset: unlimited memory+swap too (runc)
    if swap and not has_memsw:
        raise CgroupError(f"{f}.swap: swap accounting is not enabled on this host "
                          "(no memory.memsw.limit_in_bytes)")
    mem_w = [Write("memory", "memory.limit_in_bytes", str(limit), f"{f}.limit")] if limit else []
    swap_w = [Write("memory", "memory.memsw.limit_in_bytes", str(swap), f"{f}.swap")] \
        if swap else []
    # memsw must stay >= memory at every step: raise memsw first when it grows.
    swap_first = swap == -1 or (swap > 0 and current_limit < swap)
    out = swap_w + mem_w if swap_first else mem_w + swap_w
    if m.reservation:
        out.append(Write("memory", "memory.soft_limit_in_bytes", str(m.reservation),
                         f"{f}.reservation"))
    if m.kernel_tcp:
        out.append(Write("memory", "memory.kmem.tcp.limit_in_bytes", str(m.kernel_tcp),
                         f"{f}.kernelTCP"))
    if m.swappiness is not None:
        out.append(Write("memory", "memory.swappiness", str(m.swappiness), f"{f}.swappiness"))
    if m.disable_oom_killer:
        out.append(Write("memory", "memory.oom_control", "1", f"{f}.disableOOMKiller"))
    return out


def _v1_blkio(r: Resources, weight_file: str | None) -> list[Write]:
    b = r.block_io
    if b is None:
        return []
    f = f"{FIELD}.blockIO"
    out = []
    wants_weight = b.weight or b.leaf_weight or b.weight_device
    if wants_weight and weight_file is None:
        raise CgroupError(f"{f}.weight: this host's blkio controller has no weight file "
                          "(no CFQ/BFQ I/O scheduler)")
    if b.weight:
        out.append(Write("blkio", str(weight_file), str(b.weight), f"{f}.weight"))
    if b.leaf_weight:
        out.append(Write("blkio", "blkio.leaf_weight", str(b.leaf_weight), f"{f}.leafWeight"))
    for d in b.weight_device:
        if d.weight:
            out.append(Write("blkio", str(weight_file), f"{d.major}:{d.minor} {d.weight}",
                             f"{f}.weightDevice"))
        if d.leaf_weight:
            out.append(Write("blkio", "blkio.leaf_weight_device",
                             f"{d.major}:{d.minor} {d.leaf_weight}", f"{f}.weightDevice"))
    for name, devs in (("read_bps_device", b.throttle_read_bps_device),
                       ("write_bps_device", b.throttle_write_bps_device),
                       ("read_iops_device", b.throttle_read_iops_device),
                       ("write_iops_device", b.throttle_write_iops_device)):
        out += [Write("blkio", f"blkio.throttle.{name}", f"{d.major}:{d.minor} {d.rate}",
                      f"{f}.throttle") for d in devs]
    return out
