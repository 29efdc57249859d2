"""create/start protocol, hooks, errors without half-created containers, console, exec_in."""

from __future__ import annotations

import array
import json
import os
import socket
import time

import pytest

from runtime.errors import HookError
from runtime.init import ExecContext, exec_in
from runtime.spec import parse_spec
from tests.integration.runtime.bundle import default_config, run


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def test_init_waits_on_exec_fifo_until_start(bundle, tmp_path):
    fifo = str(tmp_path / "exec.fifo")
    os.mkfifo(fifo, 0o622)

    def start(pid: int, out: int) -> list[str]:
        time.sleep(0.3)
        before = _comm(pid)  # still the runtime, blocked in open(fifo)
        with open(fifo, "rb") as f:
            data = f.read()
        return [before, data.decode()]

    res = run(bundle, default_config(["echo", "started"]), exec_fifo=fifo, after_spawn=start)
    assert res.error == ""
    assert res.extra[0] != "echo" and res.extra[1] == "0"
    assert res.output == "started\n"
    assert res.status == 0


def test_on_created_runs_before_set_up_and_can_place_the_init_in_a_cgroup(bundle):
    cg = f"/sys/fs/cgroup/pids/crt-init-{os.getpid()}"
    os.mkdir(cg)
    try:
        def on_created(pid: int) -> None:
            with open(f"{cg}/cgroup.procs", "w") as f:
                f.write(str(pid))

        res = run(bundle, default_config(["grep", "pids", "/proc/self/cgroup"]),
                  on_created=on_created)
        assert res.error == ""
        assert res.output.strip().endswith(f":pids:/crt-init-{os.getpid()}")
    finally:
        os.rmdir(cg)


def test_create_and_start_container_hooks_get_state(bundle, tmp_path):
    out = tmp_path / "created.json"
    cfg = default_config(["cat", "/tmp/started"])
    cfg["hooks"] = {
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}"]}],
        # startContainer runs inside the container: /bin/sh is the rootfs's busybox
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/started"],
                            "env": ["X=1"], "timeout": 5}],
    }
    state = {"ociVersion": "1.2.0", "id": "crt-init-test", "bundle": bundle}
    res = run(bundle, cfg, state=state)
    assert res.error == ""
    created = json.loads(out.read_text())
    assert created == {**state, "pid": res.pid, "status": "creating"}
    assert json.loads(res.output) == {**state, "pid": res.pid, "status": "created"}


def test_failing_hook_aborts_create_and_leaves_no_process(bundle):
    cfg = default_config(["true"])
    cfg["hooks"] = {"createContainer": [{"path": "/bin/sh",
                                         "args": ["sh", "-c", "echo boom >&2; exit 3"]}]}
    res = run(bundle, cfg)
    assert res.error == ("InitError: creating container crt-init-test: createContainer hooks: "
                         "createContainer hook /bin/sh: exit status 3: boom")
    assert res.children_left is False


def test_hook_timeout(bundle):
    cfg = default_config(["true"])
    cfg["hooks"] = {"createContainer": [{"path": "/bin/sleep", "args": ["sleep", "10"],
                                         "timeout": 1}]}
    t0 = time.monotonic()
    res = run(bundle, cfg)
    assert "timed out after 1s" in res.error
    assert time.monotonic() - t0 < 5
    assert res.children_left is False


def test_missing_program_is_reported_at_create(bundle):
    res = run(bundle, default_config(["no-such-program"]))
    assert res.error == ("InitError: creating container crt-init-test: looking up the program: "
                         "[Errno 2] executable file 'no-such-program' not found in $PATH "
                         "of the container")
    assert res.children_left is False


def test_bad_mount_names_the_destination(bundle):
    cfg = default_config(["true"])
    cfg["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/nonexistent-crt",
                          "options": ["bind"]})
    res = run(bundle, cfg)
    assert "mounting bind '/nonexistent-crt' on /mnt" in res.error
    assert res.children_left is False


def test_unknown_apparmor_profile_is_a_clear_error(bundle):
    cfg = default_config(["true"])
    cfg["process"]["apparmorProfile"] = "crt-init-profile"
    res = run(bundle, cfg)
    assert res.error == ("SecurityError: apparmor profile 'crt-init-profile' requested but "
                         "AppArmor is not enabled on this host")
    assert res.children_left is False


def _receive_pty(listener: socket.socket) -> tuple[bytes, bytes]:
    """Accept the console-socket connection, take the pty master, read it to the end."""
    conn, _ = listener.accept()
    fds = array.array("i")
    msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(fds.itemsize))
    fds.frombytes(anc[0][2][: fds.itemsize])
    master = fds[0]
    data = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO once the slave side is gone
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    conn.close()
    return msg, data


def _listener(path: str) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    return listener


def test_terminal_master_is_sent_over_console_socket(bundle, tmp_path):
    path = str(tmp_path / "console.sock")
    cfg = default_config(["sh", "-c", "tty; stty size; echo hi"])
    cfg["process"]["terminal"] = True
    cfg["process"]["consoleSize"] = {"height": 30, "width": 100}
    with _listener(path) as listener:
        res = run(bundle, cfg, console_socket=path)
        assert res.error == ""
        msg, data = _receive_pty(listener)
    assert msg == b"/dev/ptmx"
    assert data.decode().split() == ["/dev/pts/0", "30", "100", "hi"]


def test_exec_in_with_terminal(bundle, tmp_path):
    path = str(tmp_path / "exec-console.sock")
    cfg = default_config(["sleep", "30"])

    def do_exec(pid: int, out: int) -> int:
        proc = parse_spec({**cfg, "process": {**cfg["process"], "terminal": True,
                                              "args": ["sh", "-c", "tty"]}}).process
        epid = exec_in(ExecContext(pid=pid, process=proc, console_socket=path))
        _, st = os.waitpid(epid, 0)
        os.kill(pid, 9)
        return os.waitstatus_to_exitcode(st)

    with _listener(path) as listener:
        res = run(bundle, cfg, after_spawn=do_exec)
        assert res.error == ""
        _, data = _receive_pty(listener)
    assert res.extra == 0
    assert data.decode().split() == ["/dev/pts/0"]


def test_exec_in_joins_namespaces_user_and_cgroup(bundle):
    cg = f"/sys/fs/cgroup/pids/crt-init-exec-{os.getpid()}"
    os.mkdir(cg)
    cfg = default_config(["sleep", "30"])

    def on_created(pid: int) -> None:
        with open(f"{cg}/cgroup.procs", "w") as f:
            f.write(str(pid))

    def do_exec(pid: int, out: int) -> int:
        proc = parse_spec({**cfg, "process": {**cfg["process"], "args": [
            "sh", "-c", "hostname; cat /proc/1/comm; id -u; grep -c NoNewPrivs:.1 "
                        "/proc/self/status; grep :pids: /proc/self/cgroup"],
            "user": {"uid": 1000, "gid": 1000}}}).process
        epid = exec_in(ExecContext(pid=pid, process=proc, stdout=out, stderr=out))
        _, st = os.waitpid(epid, 0)
        os.kill(pid, 9)
        return os.waitstatus_to_exitcode(st)

    try:
        res = run(bundle, cfg, on_created=on_created, after_spawn=do_exec)
    finally:
        os.rmdir(cg)
    assert res.error == ""
    assert res.extra == 0
    assert res.output.split()[:4] == ["crt-init-box", "sleep", "1000", "1"]
    assert res.output.split()[4].endswith(f":pids:/crt-init-exec-{os.getpid()}")


def test_exec_in_reports_missing_program(bundle):
    cfg = default_config(["sleep", "30"])

    def do_exec(pid: int, out: int) -> list:
        proc = parse_spec({**cfg, "process": {**cfg["process"], "args": ["nope"]}}).process
        try:
            exec_in(ExecContext(pid=pid, process=proc, container_id="crt-init-x", stdout=out,
                                stderr=out))
            return ["no error"]
        except Exception as e:  # noqa: BLE001
            time.sleep(0.1)
            return [f"{type(e).__name__}: {e}", list(os.waitpid(-1, os.WNOHANG))]
        finally:
            os.kill(pid, 9)

    res = run(bundle, cfg, after_spawn=do_exec)
    assert res.extra[1] == [0, 0]  # only the init is left, no zombie of the failed exec
    assert res.extra[0] == ("InitError: exec in container crt-init-x: looking up the program: "
                         "[Errno 2] executable file 'nope' not found in $PATH of the container")


def test_missing_rootfs_is_a_spec_error(bundle):
    cfg = default_config(["true"])
    cfg["root"]["path"] = "no-rootfs"
    res = run(bundle, cfg)
    assert res.error == f"SpecError: root.path: {bundle}/no-rootfs is not a directory"


def test_failing_on_created_aborts_and_leaves_no_process(bundle):
    def on_created(pid: int) -> None:
        raise HookError("createRuntime hook /x: exit status 1")

    res = run(bundle, default_config(["true"]), on_created=on_created)
    assert res.error == "HookError: createRuntime hook /x: exit status 1"
    assert res.children_left is False


def test_idmapped_mounts_it_cannot_make_are_refused_not_ignored(bundle):
    """An idmapped mount needs a mapping (its own, complete, or the container's user
    namespace's) and a bind: otherwise create fails naming the mount."""
    cfg = default_config(["true"])
    cfg["mounts"].append({"destination": "/m", "type": "bind", "source": "/tmp",
                          "options": ["rbind", "idmap"]})
    res = run(bundle, cfg)
    assert res.error == ("SpecError: mounts[7]: an idmapped mount without mappings of its "
                         "own needs the container to have a user namespace")
    cfg["mounts"][-1]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 10}]
    res = run(bundle, cfg)
    assert res.error == ("SpecError: mounts[7]: an idmapped mount needs both uidMappings "
                         "and gidMappings")
    cfg["mounts"][-1] = {"destination": "/m", "type": "tmpfs", "source": "tmpfs",
                         "options": ["idmap"]}
    res = run(bundle, cfg)
    assert res.error == "SpecError: mounts[7]: only bind mounts can be idmapped"


def test_exec_fifo_without_proc_fails_at_create(bundle, tmp_path):
    fifo = str(tmp_path / "exec.fifo")
    os.mkfifo(fifo, 0o622)
    cfg = default_config(["true"])
    cfg["mounts"] = [m for m in cfg["mounts"] if m["type"] != "proc"]
    cfg["linux"]["maskedPaths"] = cfg["linux"]["readonlyPaths"] = []
    res = run(bundle, cfg, exec_fifo=fifo)
    assert res.error == ("InitError: creating container crt-init-test: waiting for start needs "
                         "/proc mounted in the container (the exec fifo is reopened through "
                         "/proc/self/fd)")
    assert res.children_left is False


@pytest.mark.parametrize("in_place", [False, True])
def test_in_place_spawn_is_the_same_container(bundle, in_place):
    """The caller doing stage1's work itself (a throwaway creator) gives the same container:
    pid 1 in a new pid namespace, its own hostname and network namespace, the exit code."""
    res = run(bundle, default_config(["sh", "-c", "echo $$; hostname; ls /sys/class/net; "
                                                  "exit 3"]), in_place=in_place)
    assert res.error == ""
    assert res.output.split() == ["1", "crt-init-box", "lo"]
    assert res.status == 3


def test_in_place_spawn_falls_back_to_stage1_for_hooks(bundle, tmp_path):
    """With createRuntime hooks the host's placement runs in the runtime's namespaces (where
    hooks belong): no in-place stage1 then."""
    out = tmp_path / "place-net"
    cfg = default_config(["true"])
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/true"}]}

    def on_created(pid: int) -> None:
        out.write_text(os.readlink("/proc/self/ns/net"))

    res = run(bundle, cfg, in_place=True, on_created=on_created)
    assert res.error == ""
    assert out.read_text() == os.readlink("/proc/self/ns/net")
