"""Load and validate config.json (OCI runtime-spec 1.2, Linux) into ``runtime.spec.model``."""

from __future__ import annotations

import json
import os
import re
from typing import Any

from runtime import caps
from runtime.errors import SpecError
from runtime.spec import model as m
from runtime.spec.fields import arr, boolean, get, integer, items, obj, string, strings, uint32

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
RLIMITS = ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
           "RLIMIT_LOCKS", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE",
           "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING",
           "RLIMIT_STACK")
PROPAGATIONS = ("", "shared", "slave", "private", "unbindable",
                "rshared", "rslave", "rprivate", "runbindable")
DEVICE_TYPES = ("c", "b", "u", "p")
PERSONALITY_DOMAINS = ("LINUX", "LINUX32")
# Patterns stay strings, compiled by re on first use (and cached there): compiling
# them at import would cost every CLI call.
_VERSION_RE = r"^1\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
_UINT64 = 2**64 - 1


def load_spec(bundle: str) -> m.Spec:
    """Read ``<bundle>/config.json`` and validate it.

    Raises:
        SpecError: the file is missing, not JSON, or a field is invalid (message names the field).
    """
    return load_config(bundle).spec


def load_config(bundle: str) -> m.Config:
    """Read ``<bundle>/config.json`` and validate it, keeping the bytes read.

    Raises:
        SpecError: the file is missing, not JSON, or a field is invalid (message names the field).
    """
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise SpecError("", f"reading {path}: {e}") from e
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise SpecError("", f"parsing {path}: {e}") from e
    return m.Config(parse_spec(doc), raw)


def config_from_doc(doc: Any) -> m.Config:
    """Validate a config.json document built in memory (crid's); ``raw`` is its JSON.

    Raises SpecError naming the field (or the value json cannot encode).
    """
    spec = parse_spec(doc)
    try:
        raw = json.dumps(doc).encode()
    except (TypeError, ValueError) as e:
        raise SpecError("", f"encoding config.json: {e}") from e
    return m.Config(spec, raw)


def parse_spec(doc: Any) -> m.Spec:
    """Validate a decoded config.json document. Raises SpecError naming the field."""
    d = obj(doc, "(config)")
    version = get(d, "ociVersion", "", string)
    if not re.match(_VERSION_RE, version):
        raise SpecError("ociVersion", f"unsupported version {version!r} (want 1.x.y)")
    return m.Spec(
        oci_version=version,
        root=get(d, "root", "", _root),
        process=get(d, "process", "", _process, None),
        hostname=get(d, "hostname", "", _uts_name, ""),
        domainname=get(d, "domainname", "", _uts_name, ""),
        mounts=items(d, "mounts", "", _mount),
        hooks=get(d, "hooks", "", _hooks, m.Hooks()),
        annotations=get(d, "annotations", "", _annotations, {}),
        linux=get(d, "linux", "", _linux, m.Linux()),
    )


def parse_process(doc: Any, path: str = "process") -> m.Process:
    """Validate a process object on its own (``crid-runtime exec --process``, CRI exec).

    Raises SpecError naming the field under ``path``.
    """
    return _process(doc, path)


def _uts_name(v: Any, path: str) -> str:
    name = string(v, path)
    if len(name.encode()) > 64:  # __NEW_UTS_LEN
        raise SpecError(path, f"longer than 64 bytes ({len(name.encode())})")
    return name


def _root(v: Any, path: str) -> m.Root:
    d = obj(v, path)
    p = get(d, "path", path, string)
    if not p:
        raise SpecError(f"{path}.path", "must not be empty")
    return m.Root(path=p, readonly=get(d, "readonly", path, boolean, False))


def _process(v: Any, path: str) -> m.Process:
    d = obj(v, path)
    args = get(d, "args", path, strings)
    if not args:
        raise SpecError(f"{path}.args", "must name at least the program to run")
    cwd = get(d, "cwd", path, string)
    if not cwd.startswith("/"):
        raise SpecError(f"{path}.cwd", f"must be an absolute path, got {cwd!r}")
    env = get(d, "env", path, strings, ())
    for i, e in enumerate(env):
        if "=" not in e:
            raise SpecError(f"{path}.env[{i}]", f"expected KEY=value, got {e!r}")
    return m.Process(
        args=args, cwd=cwd, env=env,
        terminal=get(d, "terminal", path, boolean, False),
        console_size=get(d, "consoleSize", path, _console_size, None),
        user=get(d, "user", path, _user, m.User()),
        capabilities=get(d, "capabilities", path, _capabilities, None),
        rlimits=_rlimits(d, path),
        no_new_privileges=get(d, "noNewPrivileges", path, boolean, False),
        apparmor_profile=get(d, "apparmorProfile", path, string, ""),
        oom_score_adj=get(d, "oomScoreAdj", path, integer, None, lo=-1000, hi=1000),
        selinux_label=get(d, "selinuxLabel", path, string, ""),
        io_priority=get(d, "ioPriority", path, _io_priority, None),
        scheduler=get(d, "scheduler", path, _scheduler, None),
        exec_cpu_affinity=get(d, "execCPUAffinity", path, _cpu_affinity, None),
    )


IO_CLASSES = ("IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE")
SCHED_POLICIES = ("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_IDLE")


def _io_priority(v: Any, path: str) -> m.IOPriority:
    d = obj(v, path)
    cls = get(d, "class", path, string)
    if cls not in IO_CLASSES:
        raise SpecError(f"{path}.class", f"unknown I/O priority class {cls!r}")
    return m.IOPriority(io_class=cls, priority=get(d, "priority", path, integer, 0, lo=0, hi=7))


def _scheduler(v: Any, path: str) -> m.Scheduler:
    d = obj(v, path)
    policy = get(d, "policy", path, string)
    if policy not in SCHED_POLICIES:
        raise SpecError(f"{path}.policy", f"unsupported scheduling policy {policy!r}")
    return m.Scheduler(policy=policy, nice=get(d, "nice", path, integer, 0, lo=-20, hi=19),
                       priority=get(d, "priority", path, integer, 0, lo=0, hi=99))


def _cpu_list(v: Any, path: str) -> tuple[int, ...]:
    """"0-3,7" -> (0, 1, 2, 3, 7)."""
    text = string(v, path)
    cpus: list[int] = []
    for part in filter(None, text.replace(" ", "").split(",")):
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or hi and not hi.isdigit() or hi and int(hi) < int(lo):
            raise SpecError(path, f"invalid CPU list {text!r}")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return tuple(cpus)


def _cpu_affinity(v: Any, path: str) -> m.CPUAffinity:
    d = obj(v, path)
    return m.CPUAffinity(initial=get(d, "initial", path, _cpu_list, ()),
                         final=get(d, "final", path, _cpu_list, ()))


def _console_size(v: Any, path: str) -> m.ConsoleSize:
    d = obj(v, path)
    return m.ConsoleSize(height=get(d, "height", path, integer, lo=0, hi=65535),
                         width=get(d, "width", path, integer, lo=0, hi=65535))


def _user(v: Any, path: str) -> m.User:
    d = obj(v, path)
    gids = get(d, "additionalGids", path, arr, [])
    return m.User(
        uid=get(d, "uid", path, uint32, 0),
        gid=get(d, "gid", path, uint32, 0),
        umask=get(d, "umask", path, uint32, None),
        additional_gids=tuple(uint32(g, f"{path}.additionalGids[{i}]")
                              for i, g in enumerate(gids)),
    )


def _cap_set(v: Any, path: str) -> tuple[str, ...]:
    out = []
    for i, name in enumerate(strings(v, path)):
        try:
            out.append(caps.cap_name(caps.cap_number(name)))
        except KeyError:
            raise SpecError(f"{path}[{i}]", f"unknown capability {name!r}") from None
    return tuple(out)


def _capabilities(v: Any, path: str) -> m.Capabilities:
    d = obj(v, path)
    return m.Capabilities(**{k: get(d, k, path, _cap_set, ()) for k in
                             ("bounding", "effective", "inheritable", "permitted", "ambient")})


def _rlimits(d: dict[str, Any], path: str) -> tuple[m.Rlimit, ...]:
    out = items(d, "rlimits", path, _rlimit)
    seen: set[str] = set()
    for i, r in enumerate(out):
        if r.type in seen:
            raise SpecError(f"{path}.rlimits[{i}].type", f"duplicate rlimit {r.type!r}")
        seen.add(r.type)
    return out


def _rlimit(d: dict[str, Any], path: str) -> m.Rlimit:
    t = get(d, "type", path, string)
    if t not in RLIMITS:
        raise SpecError(f"{path}.type", f"unknown rlimit {t!r}")
    soft = get(d, "soft", path, integer, lo=0, hi=_UINT64)
    hard = get(d, "hard", path, integer, lo=0, hi=_UINT64)
    if soft > hard:
        raise SpecError(f"{path}.soft", f"soft limit {soft} is above the hard limit {hard}")
    return m.Rlimit(type=t, soft=soft, hard=hard)


def _idmap(d: dict[str, Any], path: str) -> m.IDMapping:
    size = get(d, "size", path, uint32)
    if size == 0:
        raise SpecError(f"{path}.size", "must be at least 1")
    return m.IDMapping(container_id=get(d, "containerID", path, uint32),
                       host_id=get(d, "hostID", path, uint32), size=size)


def _mount(d: dict[str, Any], path: str) -> m.Mount:
    dest = get(d, "destination", path, string)
    if not dest:
        raise SpecError(f"{path}.destination", "must not be empty")
    mtype = get(d, "type", path, string, "")
    source = get(d, "source", path, string, "")
    options = get(d, "options", path, strings, ())
    if not source and (mtype == "bind" or "bind" in options or "rbind" in options):
        raise SpecError(f"{path}.source", "a bind mount needs a source")
    return m.Mount(destination=dest, type=mtype, source=source, options=options,
                   uid_mappings=items(d, "uidMappings", path, _idmap),
                   gid_mappings=items(d, "gidMappings", path, _idmap))


def _hook(d: dict[str, Any], path: str) -> m.Hook:
    p = get(d, "path", path, string)
    if not p.startswith("/"):
        raise SpecError(f"{path}.path", f"must be an absolute path, got {p!r}")
    return m.Hook(path=p, args=get(d, "args", path, strings, ()),
                  env=get(d, "env", path, strings, ()),
                  timeout=get(d, "timeout", path, integer, None, lo=1))


def _hooks(v: Any, path: str) -> m.Hooks:
    d = obj(v, path)
    return m.Hooks(prestart=items(d, "prestart", path, _hook),
                   create_runtime=items(d, "createRuntime", path, _hook),
                   create_container=items(d, "createContainer", path, _hook),
                   start_container=items(d, "startContainer", path, _hook),
                   poststart=items(d, "poststart", path, _hook),
                   poststop=items(d, "poststop", path, _hook))


def _annotations(v: Any, path: str) -> dict[str, str]:
    d = obj(v, path)
    return {k: string(val, f"{path}.{k}") for k, val in d.items()}


def _namespace(d: dict[str, Any], path: str) -> m.Namespace:
    t = get(d, "type", path, string)
    if t not in NAMESPACE_TYPES:
        raise SpecError(f"{path}.type", f"unknown namespace type {t!r}")
    p = get(d, "path", path, string, "")
    if p and not p.startswith("/"):
        raise SpecError(f"{path}.path", f"must be an absolute path, got {p!r}")
    return m.Namespace(type=t, path=p)


def _device(d: dict[str, Any], path: str) -> m.Device:
    t = get(d, "type", path, string)
    if t not in DEVICE_TYPES:
        raise SpecError(f"{path}.type", f"unknown device type {t!r} (want c, b, u or p)")
    p = get(d, "path", path, string)
    if not p.startswith("/"):
        raise SpecError(f"{path}.path", f"must be an absolute path, got {p!r}")
    need_numbers = t != "p"
    return m.Device(
        type=t, path=p,
        major=get(d, "major", path, integer, *(() if need_numbers else (0,)), lo=0),
        minor=get(d, "minor", path, integer, *(() if need_numbers else (0,)), lo=0),
        file_mode=get(d, "fileMode", path, integer, None, lo=0, hi=0o7777),
        uid=get(d, "uid", path, uint32, None), gid=get(d, "gid", path, uint32, None))


def _sysctl(v: Any, path: str) -> tuple[tuple[str, str], ...]:
    d = obj(v, path)
    return tuple((k, string(val, f"{path}.{k}")) for k, val in d.items())


def _personality(v: Any, path: str) -> m.Personality:
    d = obj(v, path)
    dom = get(d, "domain", path, string)
    if dom not in PERSONALITY_DOMAINS:
        raise SpecError(f"{path}.domain", f"unknown personality domain {dom!r}")
    return m.Personality(domain=dom, flags=get(d, "flags", path, strings, ()))


def _time_offsets(v: Any, path: str) -> tuple[tuple[str, int, int], ...]:
    d = obj(v, path)
    out = []
    for clock, off in d.items():
        sub = f"{path}.{clock}"
        if clock not in ("monotonic", "boottime"):
            raise SpecError(sub, "only monotonic and boottime clocks can be offset")
        o = obj(off, sub)
        out.append((clock, get(o, "secs", sub, integer, 0),
                    get(o, "nanosecs", sub, integer, 0, lo=0, hi=999_999_999)))
    return tuple(out)


def _raw(v: Any, path: str) -> dict[str, Any]:
    return obj(v, path)


def _linux(v: Any, path: str) -> m.Linux:
    d = obj(v, path)
    namespaces = items(d, "namespaces", path, _namespace)
    types = [ns.type for ns in namespaces]
    for i, t in enumerate(types):
        if t in types[:i]:
            raise SpecError(f"{path}.namespaces[{i}].type", f"duplicate namespace {t!r}")
    prop = get(d, "rootfsPropagation", path, string, "")
    if prop not in PROPAGATIONS:
        raise SpecError(f"{path}.rootfsPropagation", f"unknown propagation {prop!r}")
    lin = m.Linux(
        namespaces=namespaces,
        uid_mappings=items(d, "uidMappings", path, _idmap),
        gid_mappings=items(d, "gidMappings", path, _idmap),
        devices=items(d, "devices", path, _device),
        cgroups_path=get(d, "cgroupsPath", path, string, ""),
        resources=get(d, "resources", path, _raw, None),
        seccomp=get(d, "seccomp", path, _raw, None),
        sysctl=get(d, "sysctl", path, _sysctl, ()),
        masked_paths=get(d, "maskedPaths", path, strings, ()),
        readonly_paths=get(d, "readonlyPaths", path, strings, ()),
        rootfs_propagation=prop,
        mount_label=get(d, "mountLabel", path, string, ""),
        personality=get(d, "personality", path, _personality, None),
        time_offsets=get(d, "timeOffsets", path, _time_offsets, ()),
    )
    _check_userns(lin, path)
    timens = lin.namespace("time")
    if lin.time_offsets and (timens is None or timens.path):
        raise SpecError(f"{path}.timeOffsets", "needs a new time namespace")
    return lin


def _check_userns(lin: m.Linux, path: str) -> None:
    userns = lin.namespace("user")
    if (lin.uid_mappings or lin.gid_mappings) and userns is None:
        raise SpecError(f"{path}.uidMappings", "mappings given without a user namespace")
    if userns is not None and not userns.path and not (lin.uid_mappings and lin.gid_mappings):
        raise SpecError(f"{path}.uidMappings",
                        "a new user namespace needs both uidMappings and gidMappings")
