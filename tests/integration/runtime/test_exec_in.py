"""exec_in's one-fork path: the caller's pid namespace, cgroup placement by the caller, a
seccomp filter handed over already compiled."""

from __future__ import annotations

import os

from runtime.init import ExecContext, exec_in
from runtime.seccomp import CompiledFilter, prepare_filter
from runtime.spec import parse_spec
from tests.integration.runtime.bundle import default_config, run

NO_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}


def _ns(pid: int | str, name: str) -> tuple[int, int]:
    st = os.stat(f"/proc/{pid}/ns/{name}")
    return st.st_dev, st.st_ino


def _process(cfg: dict, args: list[str]) -> object:
    return parse_spec({**cfg, "process": {**cfg["process"], "args": args}}).process


def test_the_process_is_in_the_init_pid_namespace_and_the_caller_is_not(bundle):
    cfg = default_config(["sleep", "30"])

    def do_exec(pid: int, out: int) -> list:
        epid = exec_in(ExecContext(pid=pid, process=_process(cfg, ["sh", "-c", "echo $$"]),
                                   stdout=out, stderr=out))
        seen = [_ns(epid, "pid") == _ns(pid, "pid"),
                _ns("self", "pid_for_children") == _ns("self", "pid"),
                _ns("self", "pid") != _ns(pid, "pid")]
        os.waitpid(epid, 0)
        os.kill(pid, 9)
        return seen

    res = run(bundle, cfg, after_spawn=do_exec)
    assert res.error == ""
    assert res.extra == [True, True, True]
    assert res.output.split() != ["1"] and int(res.output) > 1  # a pid of the container's


def test_a_cgroup_that_cannot_be_joined_fails_the_exec_without_leftovers(bundle):
    cfg = default_config(["sleep", "30"])
    missing = f"/sys/fs/cgroup/pids/crt-exs-missing-{os.getpid()}"

    def do_exec(pid: int, out: int) -> list:
        try:
            exec_in(ExecContext(pid=pid, process=_process(cfg, ["true"]), stdout=out,
                                stderr=out, container_id="crt-exs-x", cgroup_dirs=(missing,)))
            return ["no error"]
        except Exception as e:  # noqa: BLE001
            return [f"{type(e).__name__}: {e}", list(os.waitpid(-1, os.WNOHANG))]
        finally:
            os.kill(pid, 9)

    res = run(bundle, cfg, after_spawn=do_exec)
    assert res.extra[0].startswith("InitError: exec in container crt-exs-x: joining the "
                                   f"container's cgroup {missing}: [Errno 2] ")
    assert res.extra[1] == [0, 0]  # only the init is left, no zombie of the failed exec


def test_a_filter_compiled_beforehand_is_loaded(bundle):
    cfg = default_config(["sleep", "30"])
    compiled = prepare_filter(NO_MKDIR)
    handed = CompiledFilter.from_bytes(compiled.encode(), compiled.flags)

    def do_exec(pid: int, out: int) -> int:
        proc = _process(cfg, ["sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/d; "
                                          "echo $?"])
        epid = exec_in(ExecContext(pid=pid, process=proc, compiled_seccomp=handed, stdout=out,
                                   stderr=out))
        _, st = os.waitpid(epid, 0)
        os.kill(pid, 9)
        return os.waitstatus_to_exitcode(st)

    res = run(bundle, cfg, after_spawn=do_exec)
    assert res.error == "" and res.extra == 0
    lines = res.output.splitlines()
    assert lines[0].split() == ["Seccomp:", "2"]
    assert "Operation not permitted" in lines[1] and lines[-1] == "1"


def test_preserved_fds_reach_the_process_and_failures_still_report(bundle):
    """The fds given are 3, 4, ... in the process, though the exec's own channel was among
    those numbers; a failed execve after that still reaches the caller as an error."""
    cfg = default_config(["sleep", "30"])

    def do_exec(pid: int, out: int) -> list:
        r, w = os.pipe()
        os.write(w, b"given\n")
        os.close(w)
        try:
            got = []
            for _ in range(2):  # many fds given: the channel's number is among the targets
                epid = exec_in(ExecContext(
                    pid=pid, process=_process(cfg, ["sh", "-c", "head -n1 <&62"]),
                    stdout=out, stderr=out, preserve_fds=(r,) * 60))
                got.append(os.waitstatus_to_exitcode(os.waitpid(epid, 0)[1]))
            try:  # found and executable, but not a format the kernel runs: execve fails
                exec_in(ExecContext(pid=pid, process=_process(cfg, ["/not-a-program"]),
                                    stdout=out, stderr=out, preserve_fds=(r,) * 60))
            except Exception as e:  # noqa: BLE001
                got.append(str(e))
            return got
        finally:
            os.close(r)
            os.kill(pid, 9)

    bad = os.path.join(bundle, "rootfs", "not-a-program")
    with open(bad, "wb") as f:
        f.write(b"\x00\x01 not an executable format")
    os.chmod(bad, 0o755)
    res = run(bundle, cfg, after_spawn=do_exec)
    assert res.error == ""
    assert res.extra[:2] == [0, 0]
    assert "Exec format error" in res.extra[2]
    assert res.output == "given\n"  # the second head finds the pipe empty
