"""ExecSync past its timeout: by the time DEADLINE_EXCEEDED is returned, the exec'd process and
every child it left are dead and reaped (cri-tools looks for them with pgrep right after)."""

from __future__ import annotations

import os
import secrets

import grpc
import pytest

from crid.api import api_pb2 as pb
from tests.integration.containers.helpers import ContainerRig, code_of, container_config

SLEEP = ("/bin/sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait")


def _host_processes_mentioning(marker: str) -> list[str]:
    """Processes whose command line has marker (zombies have none: the in-container ps
    check finds those)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd:
            found.append(f"{pid}: {cmd}")
    return found


@pytest.mark.parametrize("pid_mode", [pb.CONTAINER, pb.POD])
def test_timed_out_exec_leaves_no_process_or_zombie(rig: ContainerRig, pid_mode: int) -> None:
    pod = rig.run_pod()
    cfg = container_config(command=SLEEP, linux=pb.LinuxContainerConfig(
        security_context=pb.LinuxContainerSecurityContext(
            namespace_options=pb.NamespaceOption(pid=pid_mode))))
    cid = rig.run(pod, cfg)
    n = 600 + secrets.randbelow(300)
    marker = f"sleep {n}"
    cmd = ("/bin/sh", "-c", f"sleep {n} & sleep {n + 1}; echo never")
    assert code_of(lambda: rig.exec(cid, *cmd, timeout=1)) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert _host_processes_mentioning(marker) == []
    assert _host_processes_mentioning(f"sleep {n + 1}") == []
    ps = rig.exec(cid, "/bin/ps", "-o", "pid,stat,args").stdout.decode()
    rows = [ln.split(None, 2) for ln in ps.splitlines()[1:]]
    # what is left: the container (and, with a pod pid namespace, the pod's infra process)
    assert [r for r in rows if not r[2].startswith(("/bin/sh -c trap", "sleep 86400",
                                                    "/bin/ps", "/bin/sleep infinity"))] == [], ps
    assert not [r for r in rows if r[1].startswith("Z")], ps
