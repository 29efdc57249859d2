"""The commands of ``crid-runtime``: a runc-compatible command line over ``runtime.lifecycle``.

Same commands, flags, exit codes and JSON as runc where a tool could depend on them: errors go
to stderr (and ``--log`` in ``--log-format`` text|json) with exit status 1; ``run`` and ``exec``
in the foreground exit with the process's status; ``state`` and ``list --format json`` print
runc's objects.

They run in one of two places (see ``runtime.cli.client``): in the runtime server of the ``--root``
(``runtime.cli.server``: monitors come from its zygote, a foreground process is handed back to
the calling client as a ``Foreground`` to wait for), or in the calling process itself
(``main``: monitors are forked from it, it waits itself).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from runtime.cli import DEFAULT_ROOT
from runtime.errors import OCIRuntimeError
from runtime.records import dataclass


class UsageError(Exception):
    """Bad command-line input (runc exits 1 for these too)."""


class NeedsCaller(Exception):  # noqa: N818 - a signal to the server, not a failure
    """The command proxies the caller's own terminal or passes on the caller's own fds, so it
    must run in the caller's process (raised by commands run with ``Host.is_caller`` false,
    before they change anything)."""


@dataclass(frozen=True)
class Foreground:
    """A process left running in the foreground (``run``, ``exec`` without ``--detach``):
    the caller reads its exit record from ``wait_fd`` (EOF when the monitor is gone),
    forwarding signals to ``pid`` meanwhile, then calls ``finish`` with it."""

    pid: int
    wait_fd: int


@dataclass(frozen=True)
class Host:
    """Where commands run: ``launcher`` starts monitors (None: fork them from this process,
    which must be single-threaded); ``is_caller``: this process is the caller's, holding its
    terminal and its fds (false in the server, whose commands then raise NeedsCaller)."""

    launcher: Any = None
    is_caller: bool = True


@functools.cache
def _parser() -> argparse.ArgumentParser:
    """The global flags and the command name; the command's own flags are parsed by
    ``_command_parser`` (runc, too, takes global flags only before the command). Two stages
    because building the parsers of all thirteen commands cost every call; cached because the
    server parses many command lines."""
    # No abbreviations (runc has none): the client finds --root before the command itself.
    p = argparse.ArgumentParser(prog="crid-runtime", description="OCI runtime (runc-compatible)",
                                allow_abbrev=False)
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


@functools.cache
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
    e.add_argument("--preserve-fds", type=int, default=0)
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


def build_parsers() -> None:
    """Build (and cache) every parser now: for a process that parses many command lines."""
    _parser()
    for name in _ARGUMENTS:
        _command_parser(name)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    args = _parser().parse_args(argv)
    if args.command:
        _command_parser(args.command).parse_args(args.rest, namespace=args)
    del args.rest
    return args


def main(argv: list[str] | None = None) -> int:
    """Run one command in this process, waiting for a foreground process here; the exit code."""
    args, result = execute(sys.argv[1:] if argv is None else argv, Host())
    if isinstance(result, Foreground):
        return finish(args, wait_foreground(result))
    return result


def execute(argv: list[str], host: Host) -> tuple[argparse.Namespace | None, int | Foreground]:
    """Parse and run one command on ``host``: its parsed arguments (None when parsing exited)
    and its exit code, or the Foreground process the caller must wait for and ``finish``.

    Raises NeedsCaller (see ``Host``); usage errors give argparse's exit code (2).
    """
    try:
        args = _parse(argv)
    except SystemExit as e:
        return None, e.code if isinstance(e.code, int) else 1
    args.host = host
    if args.version:
        print("crid-runtime version 0.1.0\nspec: 1.2.0")
        return args, 0
    if not args.command:
        _parser().print_help()
        return args, 0
    try:
        with _debug_log(args):
            return args, _COMMANDS[args.command](args) or 0
    except (OCIRuntimeError, UsageError, OSError, TimeoutError) as e:
        _log_error(args, str(e))
        return args, 1
    except KeyboardInterrupt:
        return args, 130


def finish_command(argv: list[str], record: bytes, host: Host | None = None) -> int:
    """``finish`` for the command line ``argv`` (parsed again)."""
    try:
        args = _parse(argv)
    except SystemExit:
        args = None
    if args is not None:
        args.host = host or Host()
    return finish(args, record)


def finish(args: argparse.Namespace | None, record: bytes) -> int:
    """After a Foreground process of ``args``'s command ended with exit ``record`` (b"": its
    monitor vanished): delete the container of ``run`` unless ``--keep``; the exit code."""
    code = int(json.loads(record)["exit_code"]) if record.strip() else 255
    if args is not None and args.command == "run" and not args.keep:
        try:
            _runtime(args).delete(args.id, force=True)
        except (OCIRuntimeError, OSError) as e:
            _log_error(args, str(e))
            return 1
    return code


class _CommandLog(logging.Handler):
    """The runtime library's log records of one command, as ``--log``/stderr lines."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(logging.DEBUG)
        self.args = args

    def emit(self, record: logging.LogRecord) -> None:
        _log_error(self.args, record.getMessage(), record.levelname.lower())


@contextlib.contextmanager
def _debug_log(args: argparse.Namespace) -> Iterator[None]:
    """With ``--debug``, the library's debug records go where runc's do, for this command only
    (the runtime server runs many commands with different flags)."""
    if not args.debug:
        yield
        return
    logger, handler = logging.getLogger("runtime"), _CommandLog(args)
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)


def _log_error(args: argparse.Namespace, msg: str, level: str = "error") -> None:
    if args.log_format == "json":
        line = json.dumps({"level": level, "msg": msg,
                           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    else:
        line = f"crid-runtime: {msg}" if level == "error" else f"crid-runtime: {level}: {msg}"
    if args.log:
        try:
            with open(args.log, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass
    print(line, file=sys.stderr)


def _runtime(args: argparse.Namespace) -> Any:
    from runtime.lifecycle import ForkLauncher, Runtime

    # A fresh Runtime per command, even in the long-lived server: its caches (specs, cgroup
    # managers) must not outlive a command, another process may recreate a container meanwhile.
    # The CLI exits soon after the monitor answers: it need not double-fork it.
    return Runtime(Path(args.root), args.host.launcher or ForkLauncher(double=False))


def _abs(path: str | None) -> Path | None:
    """The caller's relative paths are relative to its cwd, not to the monitor's (/)."""
    return Path(os.path.abspath(path)) if path else None


def _create_request(args: argparse.Namespace, wait: bool, config: Any) -> Any:
    from runtime.lifecycle import CreateRequest

    return CreateRequest(id=args.id, bundle=Path(args.bundle), pid_file=_abs(args.pid_file),
                         console_socket=_abs(args.console_socket), stdio=(0, 1, 2),
                         no_pivot=args.no_pivot, wait_fd=wait, preserve_fds=_preserved(args),
                         config=config)


def _config(args: argparse.Namespace) -> Any:
    """The bundle's config.json, read and validated once: create hands it to the init as
    such. Raises SpecError."""
    from runtime.spec import load_config

    return load_config(args.bundle)


def _preserved(args: argparse.Namespace) -> tuple[int, ...]:
    """``--preserve-fds N``: the caller's fds 3 .. 3+N-1, which must be open."""
    n = args.preserve_fds
    if n < 0:
        raise UsageError(f"--preserve-fds {n}: a count of fds cannot be negative")
    if n and not args.host.is_caller:
        raise NeedsCaller
    fds = tuple(range(3, 3 + n))
    for fd in fds:
        try:
            os.fstat(fd)
        except OSError:
            raise UsageError(f"--preserve-fds {n}: fd {fd} is not open") from None
    return fds


def cmd_create(args: argparse.Namespace) -> int:
    _runtime(args).create(_create_request(args, False, _config(args)))
    return 0


def cmd_run(args: argparse.Namespace) -> int | Foreground:
    rt = _runtime(args)
    config = _config(args)
    if _wants_tty_proxy(args, config.spec):
        return _run_with_tty(rt, args, config)
    created = rt.create(_create_request(args, not args.detach, config))
    try:
        rt.start(args.id)
    except BaseException:
        if created.wait_fd is not None:
            os.close(created.wait_fd)
        raise
    if args.detach:
        return 0
    return Foreground(created.pid, created.wait_fd)


def _wants_tty_proxy(args: argparse.Namespace, spec: Any) -> bool:
    """A terminal container run in the foreground without a console socket: runc allocates
    the pty itself and proxies it; so do we (through the monitor)."""
    terminal = spec.process is not None and spec.process.terminal
    if not terminal or args.console_socket:
        return False
    if args.detach:
        raise UsageError("cannot allocate a tty when detaching without --console-socket")
    if not args.host.is_caller:
        raise NeedsCaller
    return True


def _run_with_tty(rt: Any, args: argparse.Namespace, config: Any) -> int:
    from runtime.cli.tty import proxy
    from runtime.monitor.attach import AttachClient
    from runtime.records import replace

    # await_attach: the monitor accepts our connection in its own time; output the process
    # writes before then (a quick `tty`) would otherwise go to no one.
    req = replace(_create_request(args, False, config), stdio=None, stdin=True,
                  stdin_once=True, await_attach=True)
    created = rt.create(req)
    with AttachClient(created.attach_socket) as client:
        rt.start(args.id)
        code = proxy(client)
    if not args.keep:
        rt.delete(args.id, force=True)
    return code


def wait_foreground(fg: Foreground) -> bytes:
    """Forward terminating signals to the process until it ends; its exit record (b"" when
    its monitor vanished). Closes ``fg.wait_fd``."""
    def forward(sig: int, _: Any) -> None:
        try:
            os.kill(fg.pid, sig)
        except ProcessLookupError:
            pass
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    data = b""
    try:
        while chunk := os.read(fg.wait_fd, 4096):
            data += chunk
    finally:
        os.close(fg.wait_fd)
    return data


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


def cmd_exec(args: argparse.Namespace) -> int | Foreground:
    from runtime.lifecycle import ExecRequest

    process = _exec_process(args)
    if process.get("terminal") and not args.console_socket:
        if not args.host.is_caller:
            raise NeedsCaller
        return _exec_with_tty(args, process)
    req = ExecRequest(process=process, stdio=None if process.get("terminal") else (0, 1, 2),
                      console_socket=_abs(args.console_socket), pid_file=_abs(args.pid_file),
                      wait_fd=not args.detach, preserve_fds=_preserved(args))
    created = _runtime(args).exec(args.id, req)
    if args.detach:
        return 0
    return Foreground(created.pid, created.wait_fd)


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
    from runtime.cli.tty import proxy
    from runtime.lifecycle import ExecRequest
    from runtime.monitor.attach import AttachClient

    created = _runtime(args).exec(args.id, ExecRequest(process=process, stdin=True,
                                                       stdin_once=True, await_attach=True,
                                                       preserve_fds=_preserved(args)))
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
