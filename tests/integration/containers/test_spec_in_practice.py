"""What spec generation promises, seen from inside a running container."""

from __future__ import annotations

from pathlib import Path

import grpc

from crid.api import api_pb2 as pb
from tests.integration.containers.helpers import (
    ContainerRig,
    code_of,
    container_config,
    read_log,
    wait_for,
)


def test_user_groups_env_mounts_devices_and_workdir(rig: ContainerRig) -> None:
    data = rig.base / "crt-data"
    data.mkdir()
    (data / "hello").write_text("from the host\n")
    pod = rig.run_pod()
    sc = pb.LinuxContainerSecurityContext(run_as_username="crt", supplemental_groups=[4242],
                                          readonly_rootfs=True)
    cid = rig.run(pod, container_config(
        command=("/bin/sleep", "3600"), working_dir="/tmp",
        envs=[pb.KeyValue(key="PATH", value=b"/bin"), pb.KeyValue(key="CRT", value=b"x=y")],
        mounts=[pb.Mount(container_path="/data", host_path=str(data), readonly=True)],
        devices=[pb.Device(container_path="/dev/crt-null", host_path="/dev/null",
                           permissions="rwm")],
        linux=pb.LinuxContainerConfig(security_context=sc)))
    out = rig.exec(cid, "/bin/sh", "-c", "id; pwd; echo $CRT; echo $HOSTNAME; cat /data/hello")
    lines = out.stdout.decode().splitlines()
    assert lines[0].startswith("uid=1000(crt) gid=1000(crt) groups=1000(crt),4242"), lines
    assert lines[1:] == ["/tmp", "x=y", pod[1].hostname, "from the host"]
    assert rig.exec(cid, "/bin/touch", "/data/x").exit_code != 0
    assert rig.exec(cid, "/bin/touch", "/etc/x").exit_code != 0  # read-only root
    assert rig.exec(cid, "/bin/sh", "-c", "echo hi > /dev/crt-null").exit_code == 0
    st = rig.status(cid).status
    assert [(m.container_path, m.readonly) for m in st.mounts
            if m.container_path == "/data"] == [("/data", True)]
    assert (st.user.linux.uid, st.user.linux.gid) == (1000, 1000)
    hosts = rig.exec(cid, "/bin/cat", "/etc/hosts").stdout.decode()
    assert pod[1].hostname in hosts


def test_pod_namespaces_are_shared_and_host_pids_hidden(rig: ContainerRig) -> None:
    pod = rig.run_pod()  # pid POD: one PID namespace for the pod (its infra process is pid 1)
    a = rig.run(pod, container_config(command=("/bin/sleep", "3600")))
    b = rig.run(pod, container_config(command=("/bin/sleep", "3601")))
    ns = [[rig.exec(c, "/bin/busybox", "readlink", f"/proc/self/ns/{k}").stdout.strip()
           for k in ("net", "ipc", "uts", "pid")] for c in (a, b)]
    assert ns[0] == ns[1]
    assert rig.exec(a, "/bin/hostname").stdout.decode().strip() == pod[1].hostname
    ps = rig.exec(a, "/bin/ps", "-o", "pid,args").stdout.decode().splitlines()[1:]
    args = sorted(p.split(None, 1)[1] for p in ps if p.strip())
    assert [x for x in args if "sleep 36" in x] == ["/bin/sleep 3600", "/bin/sleep 3601"]
    assert not [x for x in args if "crid" in x or "python" in x], args
    own = rig.run_pod(linux=pb.LinuxPodSandboxConfig(
        cgroup_parent=rig.cgroup_parent, security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(pid=pb.CONTAINER))))
    c = rig.run(own, container_config(command=("/bin/sleep", "3600")))
    ps = rig.exec(c, "/bin/ps", "-o", "pid,comm").stdout.decode().splitlines()[1:]
    assert [p.split() for p in ps] == [["1", "sleep"], [ps[1].split()[0], "ps"]]


def test_long_lines_are_split_with_partial_tags(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cfg = container_config(command=("/bin/sh", "-c",
                                    "head -c 40000 /dev/zero | tr '\\0' a; echo; echo end"))
    cid = rig.run(pod, cfg)
    wait_for("exit", lambda: rig.status(cid).status.state == pb.CONTAINER_EXITED, 5)
    records = read_log(rig.log_dir / pod[1].metadata.name / cfg.log_path)
    tags = [t for _, t, _ in records]
    assert tags[-1] == "F" and records[-1][2] == "end"
    assert "P" in tags
    assert "".join(text for _, _, text in records[:-1]) == "a" * 40000


def test_tty_container_logs_through_its_terminal(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cfg = container_config(command=("/bin/sh", "-c", "test -t 1 && echo on-a-tty"), tty=True)
    cid = rig.run(pod, cfg)
    wait_for("exit", lambda: rig.status(cid).status.state == pb.CONTAINER_EXITED, 5)
    assert rig.status(cid).status.exit_code == 0
    texts = [t.rstrip("\r") for _, _, t in read_log(rig.log_dir / pod[1].metadata.name
                                                      / cfg.log_path)]
    assert "on-a-tty" in texts


def test_target_pid_namespace_and_unknown_target(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    target = rig.run(pod, container_config(command=("/bin/sleep", "3600")))
    sc = pb.LinuxContainerSecurityContext(namespace_options=pb.NamespaceOption(
        pid=pb.TARGET, target_id=target))
    debug = rig.run(pod, container_config(command=("/bin/sleep", "3600"),
                                          linux=pb.LinuxContainerConfig(security_context=sc)))
    pid_ns = [rig.exec(c, "/bin/busybox", "readlink", "/proc/self/ns/pid").stdout
              for c in (target, debug)]
    assert pid_ns[0] == pid_ns[1]
    sc.namespace_options.target_id = "0" * 64
    bad = container_config(command=("/bin/true",), linux=pb.LinuxContainerConfig(
        security_context=sc))
    assert code_of(lambda: rig.create(pod, bad)) == grpc.StatusCode.NOT_FOUND
    assert Path(rig.daemon.socket).exists()
