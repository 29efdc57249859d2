"""Stats without root: one-pass cgroup reads (v1 and v2 files laid out in a directory), the CPU
rate from the previous sample or from the container's start, and the writable-layer cache."""

from __future__ import annotations

from pathlib import Path

from crid.containers import stats
from crid.containers.cgroup_sample import CgroupDirs, RawSample
from crid.containers.stats import LayerCache, _usage

V1_STAT = ("cache 100\nrss 50\ntotal_cache 4096\ntotal_rss 8192\ntotal_inactive_file 1024\n"
           "total_pgfault 77\ntotal_pgmajfault 3\ntotal_swap 0\nhierarchical_memory_limit 9\n")
V2_STAT = "anon 6000\nfile 2000\ninactive_file 500\npgfault 40\npgmajfault 2\n"


def _files(d: Path, files: dict[str, str]) -> str:
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return str(d)


def test_v1_one_pass_reads_what_the_cri_reports(tmp_path: Path) -> None:
    dirs = {
        "cpuacct": _files(tmp_path / "cpuacct", {"cpuacct.usage": "123456789\n"}),
        "memory": _files(tmp_path / "memory", {
            "memory.usage_in_bytes": "20480\n", "memory.limit_in_bytes": "65536\n",
            "memory.stat": V1_STAT, "memory.memsw.usage_in_bytes": "22528\n"}),
        "pids": _files(tmp_path / "pids", {"pids.current": "3\n"}),
        "cpu": str(tmp_path / "absent"),
    }
    opened = CgroupDirs.open(1, dirs)
    assert opened is not None and sorted(opened.fds) == ["cpuacct", "memory", "pids"]
    raw = opened.sample()
    assert raw is not None
    assert (raw.cpu_ns, raw.memory_usage, raw.working_set, raw.rss, raw.limit) == (
        123456789, 20480, 20480 - 1024, 8192, 65536)
    assert (raw.page_faults, raw.major_page_faults, raw.swap, raw.processes) == (77, 3, 2048, 3)
    opened.close()
    assert opened.fds == {}


def test_v1_unlimited_memory_and_no_swap_accounting(tmp_path: Path) -> None:
    dirs = {"memory": _files(tmp_path / "memory", {
        "memory.usage_in_bytes": "10\n", "memory.limit_in_bytes": "9223372036854771712\n",
        "memory.stat": V1_STAT.replace("total_swap 0", "total_swap 5")})}
    opened = CgroupDirs.open(1, dirs)
    assert opened is not None
    raw = opened.sample()
    assert raw is not None and (raw.limit, raw.swap, raw.cpu_ns, raw.processes) == (0, 5, 0, 0)


def test_v2_one_pass(tmp_path: Path) -> None:
    d = _files(tmp_path / "cg", {
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
        "memory.current": "8192\n", "memory.max": "max\n", "memory.stat": V2_STAT,
        "memory.swap.current": "7\n", "pids.current": "2\n"})
    opened = CgroupDirs.open(2, {"": d})
    assert opened is not None
    raw = opened.sample()
    assert raw is not None
    assert (raw.cpu_ns, raw.memory_usage, raw.working_set, raw.rss, raw.limit, raw.swap,
            raw.processes, raw.page_faults) == (1_500_000, 8192, 7692, 6000, 0, 7, 2, 40)


def test_a_removed_cgroup_samples_as_none(tmp_path: Path) -> None:
    d = _files(tmp_path / "cg", {"cpu.stat": "usage_usec 1\n"})
    opened = CgroupDirs.open(2, {"": d})
    assert opened is not None
    (tmp_path / "cg" / "cpu.stat").unlink()
    assert opened.sample() is None
    opened.close()
    assert CgroupDirs.open(2, {"": str(tmp_path / "gone")}) is None


def _raw(ts: int, cpu: int) -> RawSample:
    return RawSample(ts, cpu, memory_usage=100, working_set=60, rss=10, limit=160,
                     page_faults=0, major_page_faults=0, swap=0, processes=2)


def test_cpu_rate_of_the_first_sample_is_measured_from_the_start() -> None:
    first = _usage(_raw(3_000_000_000, 1_000_000_000), None, since_ns=1_000_000_000)
    assert first.cpu.nano_cores == 500_000_000  # 1 s of CPU over the 2 s since the start
    second = _usage(_raw(4_000_000_000, 1_250_000_000), first, since_ns=1_000_000_000)
    assert second.cpu.nano_cores == 250_000_000  # the rate since the previous sample
    assert (second.available, second.processes) == (100, 2)
    assert _usage(_raw(3_000_000_000, 5), None, since_ns=0).cpu.nano_cores == 0  # no base


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.step = 0.0  # how long each reading advances time (a walk's duration)

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_layer_usage_is_cached_within_its_bound(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "a").write_bytes(b"x" * 8192)
    clock = _Clock()
    cache = LayerCache(clock)
    first = cache.usage(tmp_path)
    assert first.used_bytes >= 8192 and first.mountpoint == str(upper)
    (upper / "b").write_bytes(b"y" * 65536)
    clock.now += stats.LAYER_MIN_AGE / 2
    assert cache.usage(tmp_path) is first  # a cheap walk is reused for LAYER_MIN_AGE
    clock.now += stats.LAYER_MIN_AGE
    again = cache.usage(tmp_path)
    assert again.used_bytes >= first.used_bytes + 65536
    cache.retain([])
    assert cache.usage(tmp_path) is not again  # forgotten: walked afresh


def test_a_costly_walk_is_reused_longer_up_to_the_max_age(tmp_path: Path) -> None:
    (tmp_path / "upper").mkdir()
    clock = _Clock()
    cache = LayerCache(clock)
    clock.step = 0.005  # each clock reading 5 ms on: the walk "took" 5 ms -> reused 5 s
    first = cache.usage(tmp_path)
    clock.step = 0.0
    clock.now += 0.005 * stats.WALK_COST_FACTOR - 0.5
    assert cache.usage(tmp_path) is first
    clock.now += 1.0
    assert cache.usage(tmp_path) is not first
    clock.step = 1.0  # a walk of 1 s: reused for LAYER_MAX_AGE, not 1000 s
    slow = cache.usage(tmp_path)
    clock.step = 0.0
    clock.now += stats.LAYER_MAX_AGE - 1.5
    assert cache.usage(tmp_path) is slow
    clock.now += 1.0
    assert cache.usage(tmp_path) is not slow
