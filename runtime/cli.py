"""``crid-runtime``: a runc-compatible command line over ``runtime.lifecycle``.

Same commands, flags, exit codes and JSON as runc where a tool could depend on them: errors go
to stderr (and ``--log`` in ``--log-format`` text|json) with exit status 1; ``run`` and ``exec``
in the foreground exit with the process's status; ``state`` and ``list --format json`` print
runc's objects. The CLI process is single-threaded, so monitors are forked from it directly.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.errors import OCIRuntimeError

DEFAULT_ROOT = "/run/crid-runtime"


class UsageError(Exception):
    """Bad command-line input (runc exits 1 for these too)."""


def _parser() -> argparse.ArgumentParser:
    """The global flags and the command name; the command's own flags are parsed by
    ``_command_parser`` (runc, too, takes global flags only before the command). Two stages
    because building the parsers of all thirteen commands cost every call several ms."""
    p = argparse.ArgumentParser(prog="crid-runtime", description="OCI runtime (runc-compatible)")
    p.add_argument("--root", default=DEFAULT_ROOT, help="state directory")
    p.add_argument("--log", default="", help="log file for errors (default stderr)")
    p.add_argument("--log-format", default="text", choices=["text", "json"])
    p.add_argument("--debug", action="store_true")
    p.add_argument("--systemd-cgroup", action="store_true")
    p.add_argument("--rootless", default="auto")
    p.add_argument("-v", "--version", action="store_true")
    p.add_argument("command", nargs="?", choices=sorted(_COMMANDS), metavar="command",
                   help="one of: " + ", ".join(sorted(_COMMANDS)))
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def _command_parser(name: str) -> argparse.ArgumentParser:
    c = argparse.ArgumentParser(prog=f"crid-runtime {name}")
    _ARGUMENTS[name](c)
    return c


def _create_args(c: argparse.ArgumentParser, run: bool) -> None:
    c.add_argument("-b", "--bundle", default=".")
    c.add_argument("--console-socket")
    c.add_argument("--pid-file")
    c.add_argument("--no-pivot", action="store_true")
    c.add_argument("--no-new-keyring", action="store_true")
    c.add_argument("--preserve-fds", type=int, default=0)
    if run:
        c.add_argument("-d", "--detach", action="store_true")
        c.add_argument("--keep", action="store_true")
    c.add_argument("id")


def _kill_args(k: argparse.ArgumentParser) -> None:
    k.add_argument("-a", "--all", action="store_true")
    k.add_argument("id")
    k.add_argument("signal", nargs="?", default="SIGTERM")


def _delete_args(d: argparse.ArgumentParser) -> None:
    d.add_argument("-f", "--force", action="store_true")
    d.add_argument("id")


def _exec_args(e: argparse.ArgumentParser) -> None:
    e.add_argument("--console-socket")
    e.add_argument("--cwd")
    e.add_argument("-e", "--env", action="append", default=[])
    e.add_argument("-t", "--tty", action="store_true")
    e.add_argument("-u", "--user")
    e.add_argument("-p", "--process")
    e.add_argument("-d", "--detach", action="store_true")
    e.add_argument("--pid-file")
    e.add_argument("--no-new-privs", action="store_true")
    e.add_argument("--cap", action="append", default=[])
    e.add_argument("id")
    e.add_argument("args", nargs=argparse.REMAINDER)


def _list_args(ls: argparse.ArgumentParser) -> None:
    ls.add_argument("-f", "--format", default="table", choices=["table", "json"])
    ls.add_argument("-q", "--quiet", action="store_true")


def _ps_args(ps: argparse.ArgumentParser) -> None:
    ps.add_argument("-f", "--format", default="table", choices=["table", "json"])
    ps.add_argument("id")
    ps.add_argument("ps_args", nargs=argparse.REMAINDER)


def _update_args(u: argparse.ArgumentParser) -> None:
    u.add_argument("-r", "--resources")
    for flag in ("--memory", "--memory-swap", "--cpu-shares", "--cpu-quota", "--cpu-period",
                 "--cpuset-cpus", "--cpuset-mems", "--pids-limit"):
        u.add_argument(flag)
    u.add_argument("id")


def _id_arg(c: argparse.ArgumentParser) -> None:
    c.add_argument("id")


_ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "create": lambda c: _create_args(c, False), "run": lambda c: _create_args(c, True),
    "start": _id_arg, "state": _id_arg, "pause": _id_arg, "resume": _id_arg,
    "kill": _kill_args, "delete": _delete_args, "exec": _exec_args, "list": _list_args,
    "ps": _ps_args, "update": _update_args, "features": lambda c: None,
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    args = _parser().parse_args(argv)
    if args.command:
        _command_parser(args.command).parse_args(args.rest, namespace=args)
    del args.rest
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.version:
        print("crid-runtime version 0.1.0\nspec: 1.2.0")
        return 0
    if not args.command:
        _parser().print_help()
        return 0
    try:
        return _COMMANDS[args.command](args) or 0
    except (OCIRuntimeError, UsageError, OSError, TimeoutError) as e:
        _log_error(args, str(e))
        return 1
    except KeyboardInterrupt:
        return 130


def _log_error(args: argparse.Namespace, msg: str) -> None:
    if args.log_format == "json":
        line = json.dumps({"level": "error", "msg": msg,
                           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    else:
        line = f"crid-runtime: {msg}"
    if args.log:
        try:
            with open(args.log, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass
    print(line, file=sys.stderr)


def _runtime(args: argparse.Namespace) -> Any:
    from runtime.lifecycle import ForkLauncher, Runtime

    # The CLI exits soon after the monitor answers: it need not double-fork it.
    return Runtime(Path(args.root), ForkLauncher(double=False))


def _create_request(args: argparse.Namespace, wait: bool) -> Any:
    from runtime.lifecycle import CreateRequest

    return CreateRequest(id=args.id, bundle=Path(args.bundle),
                         pid_file=Path(args.pid_file) if args.pid_file else None,
                         console_socket=Path(args.console_socket) if args.console_socket
                         else None, stdio=(0, 1, 2), no_pivot=args.no_pivot, wait_fd=wait)


def cmd_create(args: argparse.Namespace) -> int:
    _runtime(args).create(_create_request(args, False))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    rt = _runtime(args)
    if _wants_tty_proxy(args):
        return _run_with_tty(rt, args)
    created = rt.create(_create_request(args, not args.detach))
    rt.start(args.id)
    if args.detach:
        return 0
    code = _wait_foreground(created.wait_fd, created.pid)
    if not args.keep:
        rt.delete(args.id, force=True)
    return code


def _wants_tty_proxy(args: argparse.Namespace) -> bool:
    """A terminal container run in the foreground without a console socket: runc allocates
    the pty itself and proxies it; so do we (through the monitor)."""
    from runtime.spec import load_spec

    process = load_spec(os.path.abspath(args.bundle)).process
    if process is None or not process.terminal or args.console_socket:
        return False
    if args.detach:
        raise UsageError("cannot allocate a tty when detaching without --console-socket")
    return True


def _run_with_tty(rt: Any, args: argparse.Namespace) -> int:
    from runtime.cli_tty import proxy
    from runtime.monitor.attach import AttachClient
    from runtime.records import replace

    req = replace(_create_request(args, False), stdio=None, stdin=True, stdin_once=True)
    created = rt.create(req)
    with AttachClient(created.attach_socket) as client:
        rt.start(args.id)
        code = proxy(client)
    if not args.keep:
        rt.delete(args.id, force=True)
    return code


def _wait_foreground(wait_fd: int, pid: int) -> int:
    """Forward terminating signals to the process and return its exit status."""
    def forward(sig: int, _: Any) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    data = b""
    while chunk := os.read(wait_fd, 4096):
        data += chunk
    os.close(wait_fd)
    if not data:
        return 255
    return int(json.loads(data)["exit_code"])


def cmd_start(args: argparse.Namespace) -> int:
    _runtime(args).start(args.id)
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    print(json.dumps(_runc_state(_runtime(args).state(args.id)), indent=2))
    return 0


def _runc_state(st: Any) -> dict[str, Any]:
    """runc's state object: the spec fields plus rootfs, created and owner."""
    d: dict[str, Any] = {"ociVersion": "1.2.0", "id": st.id,
                         "pid": st.pid if st.status.value != "stopped" else 0,
                         "status": st.status.value, "bundle": st.bundle, "rootfs": st.rootfs,
                         "created": st.created, "owner": st.owner}
    if st.annotations:
        d["annotations"] = st.annotations
    return d


def cmd_kill(args: argparse.Namespace) -> int:
    _runtime(args).kill(args.id, parse_signal(args.signal), all=args.all)
    return 0


def parse_signal(text: str) -> int:
    """``9``, ``KILL`` or ``SIGKILL`` to a signal number. Raises UsageError."""
    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise UsageError(f"unknown signal {text!r}") from None


def cmd_delete(args: argparse.Namespace) -> int:
    _runtime(args).delete(args.id, force=args.force)
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    from runtime.lifecycle import ExecRequest

    process = _exec_process(args)
    if process.get("terminal") and not args.console_socket:
        return _exec_with_tty(args, process)
    req = ExecRequest(process=process, stdio=None if process.get("terminal") else (0, 1, 2),
                      console_socket=Path(args.console_socket) if args.console_socket else None,
                      pid_file=Path(args.pid_file) if args.pid_file else None,
                      wait_fd=not args.detach)
    created = _runtime(args).exec(args.id, req)
    if args.detach:
        return 0
    return _wait_foreground(created.wait_fd, created.pid)


def _exec_process(args: argparse.Namespace) -> dict[str, Any]:
    if args.process:
        with open(args.process) as f:
            process: dict[str, Any] = json.load(f)
    else:
        if not args.args:
            raise UsageError("exec: no command given (use --process or arguments)")
        process = {"args": list(args.args), "cwd": args.cwd or "/",
                   "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    process["env"] = list(process.get("env", [])) + list(args.env)
    if args.cwd:
        process["cwd"] = args.cwd
    if args.tty:
        process["terminal"] = True
    if args.user:
        uid, _, gid = args.user.partition(":")
        process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    if args.no_new_privs:
        process["noNewPrivileges"] = True
    if process.get("terminal") and not args.console_socket and args.detach:
        raise UsageError("cannot allocate a tty when detaching without --console-socket")
    return process


def _exec_with_tty(args: argparse.Namespace, process: dict[str, Any]) -> int:
    from runtime.cli_tty import proxy
    from runtime.lifecycle import ExecRequest
    from runtime.monitor.attach import AttachClient

    created = _runtime(args).exec(args.id, ExecRequest(process=process, stdin=True,
                                                       stdin_once=True, await_attach=True))
    with AttachClient(created.attach_socket) as client:
        return proxy(client)


def cmd_list(args: argparse.Namespace) -> int:
    states = _runtime(args).list_containers()
    if args.quiet:
        print("\n".join(s.id for s in states))
    elif args.format == "json":
        print(json.dumps([_runc_state(s) for s in states]))
    else:
        print(f"{'ID':<16}{'PID':<10}{'STATUS':<10}{'BUNDLE':<30}{'CREATED':<32}OWNER")
        for s in states:
            pid = s.pid if s.status.value != "stopped" else 0
            print(f"{s.id:<16}{pid:<10}{s.status.value:<10}{s.bundle:<30}{s.created:<32}"
                  f"{s.owner or 'root'}")
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    _runtime(args).pause(args.id)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    _runtime(args).resume(args.id)
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    pids = _runtime(args).ps(args.id)
    if args.format == "json":
        print(json.dumps(pids))
        return 0
    import subprocess

    if not pids:
        return 0
    ps_args = args.ps_args or ["-ef"]
    out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    col = lines[0].split().index("PID")
    print(lines[0])
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in pids:
            print(line)
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    resources: dict[str, Any] = {}
    if args.resources:
        src = sys.stdin if args.resources == "-" else open(args.resources)
        with src:
            resources = json.load(src)
    mem = resources.setdefault("memory", {})
    cpu = resources.setdefault("cpu", {})
    for flag, section, key, conv in (
            ("memory", mem, "limit", int), ("memory_swap", mem, "swap", int),
            ("cpu_shares", cpu, "shares", int), ("cpu_quota", cpu, "quota", int),
            ("cpu_period", cpu, "period", int), ("cpuset_cpus", cpu, "cpus", str),
            ("cpuset_mems", cpu, "mems", str)):
        if getattr(args, flag) is not None:
            section[key] = conv(getattr(args, flag))
    if args.pids_limit is not None:
        resources["pids"] = {"limit": int(args.pids_limit)}
    resources = {k: v for k, v in resources.items() if v}
    _runtime(args).update(args.id, resources)
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from runtime.features import features

    print(json.dumps(features(), indent=2))
    return 0


_COMMANDS = {
    "create": cmd_create, "run": cmd_run, "start": cmd_start, "state": cmd_state,
    "kill": cmd_kill, "delete": cmd_delete, "exec": cmd_exec, "list": cmd_list,
    "pause": cmd_pause, "resume": cmd_resume, "ps": cmd_ps, "update": cmd_update,
    "features": cmd_features,
}

if __name__ == "__main__":
    sys.exit(main())
