"""System endpoints: /_ping, /version, /info (what `docker version` and `docker info` show)."""

from __future__ import annotations

import os
import platform
import socket
import threading
import time

from crid.containers.record import ContainerState
from crid.docker.deps import DockerDeps
from crid.docker.events import events
from crid.docker.http import Request, Response, json_response
from crid.docker.router import Router
from crid.docker.versions import API_VERSION, MIN_API_VERSION
from crid.version import __version__

_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
            "s390x": "s390x"}
_PING_HEADERS = [("docker-experimental", "false"), ("ostype", "linux"),
                 ("cache-control", "no-cache, no-store, must-revalidate"), ("pragma", "no-cache")]


def ping(req: Request) -> Response:
    return Response(200, b"OK", content_type="text/plain; charset=utf-8",
                    headers=list(_PING_HEADERS))


def version_info() -> dict:
    uname = os.uname()
    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "",
               "GoVersion": f"python{platform.python_version()}", "Os": "linux",
               "Arch": _GO_ARCH.get(uname.machine, uname.machine),
               "KernelVersion": uname.release, "BuildTime": "", "Experimental": "false"}
    return {"Platform": {"Name": f"crid {__version__}"},
            "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
            "Version": __version__, **{k: v for k, v in details.items() if k != "Experimental"}}


def info(d: DockerDeps) -> dict:
    from crid.docker.containers_view import docker_records

    records = docker_records(d)
    states = [r.state for r in records]
    uname = os.uname()
    return {
        "ID": _daemon_id(d), "Containers": len(states),
        "ContainersRunning": states.count(ContainerState.RUNNING), "ContainersPaused": 0,
        "ContainersStopped": len(states) - states.count(ContainerState.RUNNING),
        "Images": len(d.images.list()), "Driver": "overlay", "DriverStatus": [],
        "Plugins": {"Volume": [], "Network": ["bridge", "host"], "Authorization": None,
                    "Log": ["k8s-file"]},
        "MemoryLimit": True, "SwapLimit": True, "KernelMemory": False,
        "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True,
        "PidsLimit": True, "OomKillDisable": False, "IPv4Forwarding": True,
        "BridgeNfIptables": False, "BridgeNfIp6tables": False, "Debug": False,
        "NFd": len(os.listdir("/proc/self/fd")), "NGoroutines": threading.active_count(),
        "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()),
        "LoggingDriver": "k8s-file", "CgroupDriver": d.cgroup_driver,
        "CgroupVersion": "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1",
        "NEventsListener": 0, "KernelVersion": uname.release,
        "OperatingSystem": _os_name(), "OSVersion": "", "OSType": "linux",
        "Architecture": uname.machine, "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"InsecureRegistryCIDRs": [], "IndexConfigs": {}, "Mirrors": []},
        "NCPU": os.cpu_count() or 1,
        "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "GenericResources": None, "DockerRootDir": str(d.root),
        "HttpProxy": os.environ.get("HTTP_PROXY", ""),
        "HttpsProxy": os.environ.get("HTTPS_PROXY", ""), "NoProxy": os.environ.get("NO_PROXY", ""),
        "Name": socket.gethostname(), "Labels": [], "ExperimentalBuild": False,
        "ServerVersion": __version__, "Runtimes": {"crid": {"path": "crid-runtime"}},
        "DefaultRuntime": "crid",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=seccomp,profile=default"], "Warnings": []}


def _daemon_id(d: DockerDeps) -> str:
    path = d.state_dir / "engine-id"
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _os_name() -> str:
    try:
        for line in open("/etc/os-release", encoding="utf-8"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def register(router: Router, d: DockerDeps) -> None:
    router.add("GET", "/_ping", ping)
    router.add("GET", "/version", lambda req: json_response(version_info()))
    router.add("GET", "/info", lambda req: json_response(info(d)))
    router.add("GET", "/events", lambda req: events(d.journal, req))
