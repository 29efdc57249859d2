"""Docker's container JSON (inspect) and summary (ps) from a DockerContainer."""

from __future__ import annotations

import time
from typing import Any

from crid.containers.record import ContainerState
from crid.docker.containers_view import DockerContainer
from crid.docker.create_body import CreateBody
from crid.docker.deps import DockerDeps

ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(ns: int) -> str:
    if not ns:
        return ZERO_TIME
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def status_word(c: DockerContainer) -> str:
    """Docker's State.Status: created, running, paused, exited."""
    if c.paused:
        return "paused"
    return {ContainerState.CREATED: "created", ContainerState.RUNNING: "running"}.get(
        c.state, "exited")


def _ago(ns: int) -> str:
    secs = max(0, int(time.time() - ns / 1e9))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs >= size:
            n = secs // size
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "Less than a second ago" if secs < 1 else f"{secs} seconds ago"


def status_text(c: DockerContainer) -> str:
    """ps's STATUS column: "Up 3 minutes", "Exited (0) 2 seconds ago", "Created"."""
    r = c.record
    if r is None or c.state is ContainerState.CREATED:
        return "Created"
    if c.running:
        return "Up " + _ago(r.started_at).removesuffix(" ago") + (" (Paused)" if c.paused else "")
    return f"Exited ({r.exit_code}) {_ago(r.finished_at)}"


def _ports(d: DockerDeps, c: DockerContainer) -> dict[str, Any]:
    ports: dict[str, Any] = {p if "/" in p else f"{p}/tcp": None for p in c.body.exposed_ports}
    for b in c.body.port_bindings:
        ports.setdefault(f"{b.container_port}/{b.protocol}", [])
        ports[f"{b.container_port}/{b.protocol}"] = [
            *(ports[f"{b.container_port}/{b.protocol}"] or []),
            {"HostIp": b.host_ip or "0.0.0.0", "HostPort": str(b.host_port)}]
    return ports


def _ip(c: DockerContainer) -> str:
    return next((ip for ip in c.pod.ips if ":" not in ip), "")


def _mounts(d: DockerDeps, body: CreateBody) -> list[dict[str, Any]]:
    binds = [{"Type": "bind", "Source": b.source, "Destination": b.target, "Mode": "",
              "RW": not b.readonly, "Propagation": "rprivate"} for b in body.binds]
    return binds + [{"Type": "volume", "Name": v.name,
                     "Source": str(d.volumes.mountpoint(v.name)), "Destination": v.target,
                     "Driver": "local", "Mode": "z", "RW": not v.readonly, "Propagation": ""}
                    for v in body.volumes]


def _config(d: DockerDeps, c: DockerContainer) -> dict[str, Any]:
    b = c.body
    image_cfg: dict[str, Any] = {}
    if c.record is not None:
        try:
            image_cfg = d.image_config(c.record.image_id).get("config") or {}
        except Exception:  # the image may be gone; inspect still answers
            image_cfg = {}
    env = [*(image_cfg.get("Env") or []), *b.env]
    return {"Hostname": b.hostname or c.id[:12], "Domainname": "", "User": b.user,
            "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
            "ExposedPorts": {p: {} for p in b.exposed_ports} or None, "Tty": b.tty,
            "OpenStdin": b.open_stdin, "StdinOnce": b.stdin_once, "Env": env,
            "Cmd": b.cmd if b.cmd is not None else image_cfg.get("Cmd"), "Image": b.image,
            "Volumes": None, "WorkingDir": b.working_dir or image_cfg.get("WorkingDir", ""),
            "Entrypoint": b.entrypoint if b.entrypoint is not None else
            image_cfg.get("Entrypoint"), "OnBuild": None, "Labels": b.labels,
            "StopSignal": b.stop_signal or image_cfg.get("StopSignal") or "SIGTERM",
            **({"StopTimeout": b.stop_timeout} if b.stop_timeout is not None else {})}


def _host_config(c: DockerContainer) -> dict[str, Any]:
    b = c.body
    binds = [*((m.source, m.target, m.readonly) for m in b.binds),
             *((v.name, v.target, v.readonly) for v in b.volumes if not v.anonymous)]
    return {"Binds": [f"{src}:{dst}{':ro' if ro else ''}" for src, dst, ro in binds],
            "NetworkMode": b.network_mode,
            "PortBindings": {f"{p.container_port}/{p.protocol}": [
                {"HostIp": p.host_ip, "HostPort": str(p.host_port)}] for p in b.port_bindings},
            "RestartPolicy": {"Name": b.restart_policy, "MaximumRetryCount": b.restart_max},
            "AutoRemove": b.auto_remove, "Privileged": b.privileged, "CapAdd": b.cap_add,
            "CapDrop": b.cap_drop, "Dns": b.dns, "ExtraHosts": b.extra_hosts,
            "Memory": b.memory, "NanoCpus": b.nano_cpus, "CpuShares": b.cpu_shares,
            "ReadonlyRootfs": b.readonly_rootfs,
            # "json-file": what clients test for "the daemon serves logs" (docker-py's run()
            # reads the output through /logs only then); the file is the CRI log file.
            "LogConfig": {"Type": "json-file", "Config": {}},
            "Runtime": "crid"}


def state(c: DockerContainer) -> dict[str, Any]:
    r = c.record
    return {"Status": status_word(c), "Running": c.running, "Paused": c.paused,
            "Restarting": False, "OOMKilled": bool(r and r.reason == "OOMKilled"),
            "Dead": False, "Pid": r.pid if r and c.running else 0,
            "ExitCode": r.exit_code if r and c.state is ContainerState.EXITED else 0,
            "Error": r.message if r and r.reason == "Error" else "",
            "StartedAt": rfc3339(r.started_at if r else 0),
            "FinishedAt": rfc3339(r.finished_at if r else 0)}


def inspect(d: DockerDeps, c: DockerContainer) -> dict[str, Any]:
    r = c.record
    ip = _ip(c)
    network = {"IPAddress": ip, "IPPrefixLen": 16 if ip else 0, "Gateway": "",
               "MacAddress": "", "NetworkID": "", "EndpointID": ""}
    return {
        "Id": c.id, "Created": rfc3339(c.pod.created_at),
        "Path": "", "Args": [], "State": state(c),
        "Image": r.image_id if r else "", "ResolvConfPath": "", "HostnamePath": "",
        "HostsPath": "", "LogPath": r.log_path if r else "", "Name": "/" + c.name,
        "RestartCount": r.attempt if r else 0, "Driver": "overlay", "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None,
        "HostConfig": _host_config(c),
        "GraphDriver": {"Name": "overlay", "Data": {"MergedDir": r.rootfs if r else ""}},
        "Mounts": _mounts(d, c.body), "Config": _config(d, c),
        "NetworkSettings": {"Bridge": "", "SandboxID": c.id, "HairpinMode": False,
                            "Ports": _ports(d, c), "SandboxKey": "", **network,
                            "Networks": _networks(d, c, network)}}


def _networks(d: DockerDeps, c: DockerContainer, default: dict[str, Any]
              ) -> dict[str, dict[str, Any]]:
    """NetworkSettings.Networks by network name (docker-compose reads the names to decide
    which networks a container still needs to be connected to)."""
    out: dict[str, dict[str, Any]] = {}
    if not c.body.network_id:
        out[c.body.network_mode] = {**default, "Aliases": None, "Links": None}
    for rec in d.networks.all():
        lease = d.networks.lease(rec.id, c.id)
        if lease is None:
            continue
        v4 = next((a for a in lease.addresses if ":" not in a), "")
        ip, _, plen = v4.partition("/")
        out[rec.name] = {"IPAMConfig": None, "Links": None,
                         "Aliases": [*rec.aliases.get(c.id, []), c.id[:12]],
                         "NetworkID": rec.id, "EndpointID": "", "Gateway": rec.gateway,
                         "IPAddress": ip, "IPPrefixLen": int(plen or 0), "IPv6Gateway": "",
                         "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                         "MacAddress": "", "DriverOpts": None}
    return out


def summary(d: DockerDeps, c: DockerContainer) -> dict[str, Any]:
    """One `docker ps` row."""
    cfg = _config(d, c)
    command = " ".join([*(cfg["Entrypoint"] or []), *(cfg["Cmd"] or [])])
    ports: list[dict[str, Any]] = [
        {"IP": p.host_ip or "0.0.0.0", "PrivatePort": p.container_port,
         "PublicPort": p.host_port, "Type": p.protocol} for p in c.body.port_bindings]
    bound = {f"{p.container_port}/{p.protocol}" for p in c.body.port_bindings}
    ports += [{"PrivatePort": int(k.partition("/")[0]), "Type": k.partition("/")[2] or "tcp"}
              for k in c.body.exposed_ports if (k if "/" in k else f"{k}/tcp") not in bound]
    mode = c.body.network_mode
    return {"Id": c.id, "Names": ["/" + c.name], "Image": c.body.image,
            "ImageID": c.record.image_id if c.record else "", "Command": command,
            "Created": c.pod.created_at // 1_000_000_000, "Ports": ports,
            "Labels": c.body.labels, "State": status_word(c), "Status": status_text(c),
            "HostConfig": {"NetworkMode": mode},
            "NetworkSettings": {"Networks": {mode: {"IPAddress": _ip(c)}}},
            "Mounts": _mounts(d, c.body)}
