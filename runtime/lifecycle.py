"""The OCI runtime lifecycle (runtime.md): create, start, state, kill, delete, plus exec,
pause/resume, update, ps, wait and features.

``Runtime(root)`` keeps runc-style state under ``root``. Containers are created through a
``MonitorLauncher``: crid passes a ``runtime.launch.zygote.Zygote`` (it must never fork); the CLI,
single-threaded, uses the default ``ForkLauncher``. Every container gets a monitor that is its
parent (see ``runtime.monitor``).
"""

from __future__ import annotations

import os
import select
import signal
import time
from pathlib import Path
from typing import Any, Protocol

from runtime import caps, hooks, proctree
from runtime.cgroup_seam import Cgroups, host_view, is_frozen, open_cgroups
from runtime.cgroups.warmup import warm_up_migration
from runtime.errors import ContainerNotFound, InitError, InvalidState, OCIRuntimeError, RequestError
from runtime.exits import wait_exit, wait_for_file
from runtime.features import features as _features
from runtime.launch.execprep import ExecPrep, prepare_exec
from runtime.launch.params import ExecParams, InitParams
from runtime.monitor.attach import AttachClient, reopen_log
from runtime.monitor.exitfile import ExitStatus, read_exit_file, rfc3339_nano
from runtime.monitor.launch import MonitorFds, MonitorRequest, fork_monitor, read_reply
from runtime.monitor.leftovers import end_group, group_dir
from runtime.monitor.options import MonitorOptions
from runtime.requests import (
    MAX_PRESERVED_FDS,
    OCI_VERSION,
    Created,
    CreateRequest,
    ExecRequest,
    State,
)
from runtime.seccomp import CompiledFilter
from runtime.seccomp.cache import FilterCache
from runtime.spec import load_config, load_spec, parse_process
from runtime.spec.model import Config, Spec
from runtime.state import ContainerRecord, StateStore, Status, is_alive, process_start_time

__all__ = ["OCI_VERSION", "Created", "CreateRequest", "ExecRequest", "ForkLauncher",
           "MonitorLauncher", "Runtime", "State"]


class MonitorLauncher(Protocol):
    """Starts a monitor for a request (the zygote, or a direct fork in a CLI process)."""

    def launch(self, request: MonitorRequest, fds: MonitorFds) -> None: ...


class ForkLauncher:
    """Forks the monitor from the calling process: only for single-threaded callers (CLI).

    ``double=False`` leaves the monitor a child of the caller (one fork less): for a caller
    that exits soon, like the CLI (see ``fork_monitor``).
    """

    def __init__(self, double: bool = True) -> None:
        self.double = double

    def launch(self, request: MonitorRequest, fds: MonitorFds) -> None:
        from runtime.launch.spawners import make_spawner

        fork_monitor(request, fds, make_spawner, self.double)


class Runtime:
    """An OCI runtime with its state under ``root`` (runc's ``--root``).

    All methods raise ``runtime.errors`` types: ContainerNotFound, ContainerExists,
    InvalidState, SpecError, InitError, HookError, OCIRuntimeError.
    """

    def __init__(self, root: Path, launcher: MonitorLauncher | None = None) -> None:
        self.store = StateStore(root)
        self.launcher = launcher or ForkLauncher()
        self._specs: dict[str, Spec] = {}  # config.json copies never change after create
        self._filters = FilterCache()
        self._cgroup_managers: dict[str, Cgroups] = {}
        self._exec_preps: dict[str, ExecPrep] = {}
        # Monitors of execs a previous user of this state started (see adopt_exec_monitors).
        self._adopted_execs: dict[str, set[tuple[int, int]]] = {}

    # -- create / start ---------------------------------------------------------------------
    def create(self, req: CreateRequest) -> Created:
        """Create the container and leave its process waiting for ``start``."""
        _check_preserved(req)
        bundle = os.path.abspath(req.bundle)
        config = req.config if req.config is not None else load_config(bundle)
        spec = config.spec
        if spec.process is None:
            raise InvalidState(f"creating container {req.id}: config.json has no process")
        if spec.process.capabilities is not None:
            c = spec.process.capabilities
            caps.log_ungranted(f"container {req.id}", caps.masks(
                c.bounding, c.effective, c.permitted, c.inheritable, c.ambient))
        # compiled here, once per profile, and before anything is made: a bad one is refused
        seccomp = self._filters.get(spec.linux.seccomp) if spec.linux.seccomp else None
        d = self.store.reserve(req.id)
        self._specs.pop(req.id, None)
        self._cgroup_managers.pop(req.id, None)
        self._exec_preps.pop(req.id, None)
        try:
            created = self._create(req, bundle, config, d, seccomp)
        except BaseException:
            self._abandon(req.id, spec)
            raise
        # The state's config.json holds the same bytes: start (poststart hooks, the freezer
        # check), exec and delete need not read and parse it again.
        self._specs[req.id] = spec
        return created

    def _create(self, req: CreateRequest, bundle: str, config: Config, d: Path,
                seccomp: CompiledFilter | None) -> Created:
        spec = config.spec
        (d / "config.json").write_bytes(config.raw)  # for OCI tools and a later CLI command
        fifo = str(d / "exec.fifo")
        # In a user namespace the init reopens it as a uid of its range (which may not be
        # known here: a namespace joined by path): writable by all, as runc makes it (0622).
        os.mkfifo(fifo, 0o600)
        if spec.linux.namespace("user") is not None:
            os.chmod(fifo, 0o622)
        rec = ContainerRecord(id=req.id, bundle=bundle, created=rfc3339_nano(),
                              annotations=dict(spec.annotations),
                              rootfs=os.path.join(bundle, spec.root.path), exec_fifo=fifo,
                              exit_file=str(req.exit_file or d / "exit.json"),
                              log_path=str(req.log_path or ""))
        terminal = bool(spec.process and spec.process.terminal)
        mode = _stdio_mode(terminal, req.console_socket, req.stdio)
        if mode in ("pipes", "terminal"):
            rec.attach_socket = str(req.attach_socket or d / "attach")
        opts = MonitorOptions(container_id=req.id, stdio_mode=mode, log_path=_opt(req.log_path),
                              exit_file=rec.exit_file,
                              attach_socket=rec.attach_socket or None,
                              console_socket=_opt(req.console_socket), stdin=req.stdin,
                              stdin_once=req.stdin_once, await_attach=req.await_attach)
        state = {"ociVersion": OCI_VERSION, "id": req.id, "status": "creating",
                 "bundle": bundle, "annotations": dict(spec.annotations)}
        # Made here, before the monitor exists: making a cgroup waits for the kernel's
        # cgroup_mutex, which the migration warm-up (see _launch) holds for a whole RCU grace
        # period. Made first, the init's creator finds them and the init mounts them while
        # that grace period runs; made by the creator, both waited for its end.
        view = host_view()
        cgroups = open_cgroups(spec, req.id, view)
        cgroups.create()
        self._cgroup_managers[req.id] = cgroups
        params = InitParams(id=req.id, bundle=bundle, spec=spec, exec_fifo=fifo, state=state,
                            cgroups=view, seccomp=seccomp, no_pivot=req.no_pivot)
        created = self._launch(MonitorRequest(opts, params), req, req.id)
        try:
            rec.pid, rec.monitor_pid = created.pid, created.monitor_pid
            rec.pid_start = process_start_time(created.pid) or 0
            rec.monitor_start = process_start_time(created.monitor_pid) or 0
            self.store.save(rec)
            if req.pid_file:
                _write_pid_file(req.pid_file, created.pid)
        except BaseException:
            _quiet(lambda: os.kill(created.pid, signal.SIGKILL))  # its monitor then exits
            if created.wait_fd is not None:
                os.close(created.wait_fd)
            raise
        return Created(req.id, created.pid, created.monitor_pid, rec.exit_file,
                       rec.attach_socket, created.wait_fd)

    def _launch(self, request: MonitorRequest, req: CreateRequest | ExecRequest,
                cid: str) -> Created:
        """Have a monitor started for ``request`` with the fds ``req`` gives the process."""
        reply_r, reply_w = os.pipe2(os.O_CLOEXEC)
        wait_r, wait_w = os.pipe2(os.O_CLOEXEC) if req.wait_fd else (None, None)
        try:
            self.launcher.launch(request, MonitorFds(reply_w, wait_w, req.stdio,
                                                     req.preserve_fds))
        finally:
            os.close(reply_w)
            if wait_w is not None:
                os.close(wait_w)
        # We only wait for the reply now: start the RCU grace period the process's cgroup
        # placement will need while the monitor and the init are being forked.
        warm_up_migration()
        try:
            reply = read_reply(reply_r, req.timeout)
        except (OSError, TimeoutError) as e:
            if wait_r is not None:
                os.close(wait_r)
            raise InitError(f"creating container {cid}: {e}") from e
        if not reply.get("ok"):
            if wait_r is not None:
                os.close(wait_r)
            raise _error_from_reply(reply, cid)
        return Created(cid, int(reply["pid"]), int(reply["monitor_pid"]), "", "", wait_r)

    def _abandon(self, cid: str, spec: Spec) -> None:
        """Undo a half-done create: kill what was started, remove cgroup and state."""
        rec = None
        try:
            rec = self.store.load(cid)
        except OCIRuntimeError:
            pass
        if rec is not None and is_alive(rec.pid, rec.pid_start):
            os.kill(rec.pid, signal.SIGKILL)
        if rec is not None and rec.monitor_pid and is_alive(rec.monitor_pid, rec.monitor_start):
            # (The process may have been killed already, by _create.) Its monitor writes the
            # exit file into the state directory: let it, or the directory is refilled while
            # it is removed, and stays.
            _quiet(lambda: wait_for_file(rec.exit_file, 2.0))
        _quiet(lambda: open_cgroups(spec, cid).destroy())
        self.store.remove(cid)

    def start(self, cid: str, timeout: float = 10.0) -> None:
        """Release the created process to exec its program; then run poststart hooks."""
        rec, status = self._status(cid)
        status.require(status.can_start, "start", cid)
        fd = os.open(rec.exec_fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            self._await_fifo(fd, rec, timeout)
        finally:
            os.close(fd)
            _quiet(lambda: os.unlink(rec.exec_fifo))
        spec = self._spec(cid)
        if spec is not None and spec.hooks.poststart:
            hooks.run_hooks_best_effort(spec.hooks.poststart, self.state(cid).to_dict(),
                                        "poststart")

    def _await_fifo(self, fd: int, rec: ContainerRecord, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    if os.read(fd, 1):
                        return
                except BlockingIOError:
                    continue
            if not is_alive(rec.pid, rec.pid_start):
                raise InvalidState(f"starting container {rec.id}: its process has exited")
        raise InitError(f"starting container {rec.id}: no answer on the exec fifo in {timeout}s")

    # -- state -------------------------------------------------------------------------------
    def _status(self, cid: str) -> tuple[ContainerRecord, Status]:
        rec = self.store.load(cid)
        if rec is None:
            raise InvalidState(f"container {cid} is still being created")
        return rec, self._derive(rec)

    def _derive(self, rec: ContainerRecord) -> Status:
        if not is_alive(rec.pid, rec.pid_start):
            return Status.STOPPED
        if rec.exec_fifo and os.path.exists(rec.exec_fifo):
            return Status.CREATED
        cg = self._cgroups(rec.id)
        if cg is not None and is_frozen(cg):
            return Status.PAUSED
        return Status.RUNNING

    def state(self, cid: str) -> State:
        """The container's runtime-spec state, its status read from the live process."""
        rec = self.store.load(cid)
        if rec is None:
            return State(cid, Status.CREATING, 0, "")
        return State(rec.id, self._derive(rec), rec.pid, rec.bundle, rec.annotations,
                     rec.created, rec.rootfs, rec.owner)

    def list_containers(self) -> list[State]:
        """Every container under the root (those vanishing meanwhile are skipped)."""
        out = []
        for cid in self.store.ids():
            try:
                out.append(self.state(cid))
            except ContainerNotFound:
                continue
        return out

    def exit_status(self, cid: str) -> ExitStatus | None:
        """The recorded exit of a stopped container (None while it runs)."""
        rec = self.store.load(cid)
        return read_exit_file(rec.exit_file) if rec is not None else None

    def wait(self, cid: str, timeout: float | None = None) -> ExitStatus:
        """Block until the container's exit is recorded. Raises TimeoutError."""
        rec = self.store.load(cid)
        if rec is None:
            raise InvalidState(f"container {cid} is still being created")
        if not wait_for_file(rec.exit_file, timeout):
            raise TimeoutError(f"container {cid} still running after {timeout}s")
        status = read_exit_file(rec.exit_file)
        assert status is not None
        return status

    # -- signals and removal -------------------------------------------------------------------
    def kill(self, cid: str, sig: int = signal.SIGTERM, all: bool = False) -> None:
        """Send ``sig`` to the container's process (``all``: to every process in its cgroup)."""
        rec, status = self._status(cid)
        status.require(status.can_kill or all, "kill", cid)
        if all:
            for pid in self.ps(cid):
                _quiet(lambda p=pid: os.kill(p, sig))
            return
        try:
            os.kill(rec.pid, sig)
        except ProcessLookupError as e:
            raise InvalidState(f"killing container {cid}: it is stopped") from e

    def delete(self, cid: str, force: bool = False) -> None:
        """Remove a stopped (or created) container; ``force`` kills a running one first.

        Removes the cgroup, runs poststop hooks, removes state and the monitor's socket.
        """
        rec = self.store.load(cid)
        if rec is None:
            if not force:
                raise InvalidState(f"container {cid} is still being created")
            self._end_unrecorded(cid)
            self.store.remove(cid)
            return
        status = self._derive(rec)
        if not status.can_delete and not force:
            status.require(False, "delete", cid)
        if status is not Status.STOPPED:
            self._kill_and_wait(rec)
        self._cleanup(rec)

    def _kill_and_wait(self, rec: ContainerRecord) -> None:
        cg = self._cgroups(rec.id)
        if cg is not None:
            _quiet(cg.thaw)  # a frozen process cannot die
            for pid in _quiet(cg.pids) or []:
                _quiet(lambda p=pid: os.kill(p, signal.SIGKILL))
        _quiet(lambda: os.kill(rec.pid, signal.SIGKILL))
        _quiet(lambda: wait_exit(rec.pid, rec.pid_start, 10.0))

    def _cleanup(self, rec: ContainerRecord) -> None:
        # The monitor writes the exit file once the process and what it left are gone (see
        # runtime.monitor.leftovers), then ends: wait for both, so that the exit is recorded
        # and nothing of the container outlives its removal. A monitor that lingers (an
        # attach client that does not read its last frames) is not waited for long.
        if is_alive(rec.monitor_pid, rec.monitor_start):
            _quiet(lambda: wait_for_file(rec.exit_file, 2.0))
            if not _quiet(lambda: wait_exit(rec.monitor_pid, rec.monitor_start, 2.0)):
                _quiet(lambda: os.kill(rec.monitor_pid, signal.SIGKILL))
        self._end_leftovers(rec.id)
        self._await_adopted_execs(rec.id)
        cg = self._cgroups(rec.id)
        if cg is not None:
            _quiet(cg.destroy)
        spec = self._spec(rec.id)
        if spec is not None and spec.hooks.poststop:
            st = {"ociVersion": OCI_VERSION, "id": rec.id, "status": "stopped",
                  "bundle": rec.bundle, "annotations": rec.annotations}
            hooks.run_hooks_best_effort(spec.hooks.poststop, st, "poststop")
        if rec.attach_socket:
            _quiet(lambda: os.unlink(rec.attach_socket))
        self.store.remove(rec.id)
        self._specs.pop(rec.id, None)
        self._cgroup_managers.pop(rec.id, None)
        self._exec_preps.pop(rec.id, None)

    def _await_adopted_execs(self, cid: str) -> None:
        """An adopted exec's monitor ends once its process is gone (the container's processes
        are all dead by now): waited for as the container's own monitor is, so nothing of the
        container outlives its deletion."""
        for pid, start in self._adopted_execs.pop(cid, set()):
            if not _quiet(lambda p=pid, s=start: wait_exit(p, s, 2.0)) and is_alive(pid, start):
                _quiet(lambda p=pid: os.kill(p, signal.SIGKILL))

    def _end_unrecorded(self, cid: str) -> None:
        """A create its caller never recorded (it died meanwhile): whatever it started in the
        container's cgroup is ended, and the cgroup removed (config.json is in the state
        directory from the start of the create)."""
        cg = self._cgroups(cid)
        if cg is not None:
            directory = group_dir(cg.dirs())
            if directory is not None:
                end_group(directory)
            _quiet(cg.destroy)
        self._specs.pop(cid, None)
        self._cgroup_managers.pop(cid, None)

    def _end_leftovers(self, cid: str) -> None:
        """Processes left in the cgroup of a container without a PID namespace of its own
        (its monitor ends them, but may have died first) are killed before the cgroup is
        removed, as runc's destroy does (``signalAllProcesses``)."""
        spec, cg = self._spec(cid), self._cgroups(cid)
        if spec is None or cg is None:
            return
        pid_ns = spec.linux.namespace("pid")
        directory = group_dir(cg.dirs()) if pid_ns is None or pid_ns.path else None
        if directory is not None:
            end_group(directory)

    # -- exec, pause, update, ps --------------------------------------------------------------
    def exec(self, cid: str, req: ExecRequest) -> Created:
        """Start an extra process in the running container, under a monitor of its own."""
        _check_preserved(req)
        rec, status = self._status(cid)
        status.require(status.can_exec, "exec in", cid)
        d = self.store.dir(cid)
        tag = f"exec-{time.monotonic_ns()}"
        process = parse_process(_with_root(req.process))
        terminal = process.terminal
        mode = _stdio_mode(terminal, req.console_socket, req.stdio)
        exit_file = str(req.exit_file or ("" if req.brief else d / f"{tag}.exit"))
        attach = str(req.attach_socket or d / tag) if mode in ("pipes", "terminal") else ""
        opts = MonitorOptions(container_id=cid, stdio_mode=mode, log_path=_opt(req.log_path),
                              exit_file=exit_file or None, attach_socket=attach or None,
                              console_socket=_opt(req.console_socket), stdin=req.stdin,
                              stdin_once=req.stdin_once, await_attach=req.await_attach,
                              brief=req.brief)
        params = ExecParams(id=cid, bundle=str(d), pid=rec.pid, process=process,
                            prepared=self._exec_prep(rec))
        created = self._launch(MonitorRequest(opts, params), req, cid)
        if req.pid_file:
            _write_pid_file(req.pid_file, created.pid)
        return Created(cid, created.pid, created.monitor_pid, exit_file, attach,
                       created.wait_fd)

    def _exec_prep(self, rec: ContainerRecord) -> ExecPrep:
        """What execs into ``rec`` need, worked out at its first exec (runtime.launch.execprep)."""
        prep = self._exec_preps.get(rec.id)
        if prep is None or (prep.pid, prep.pid_start) != (rec.pid, rec.pid_start):
            spec = self._spec(rec.id)
            if spec is None:
                raise InvalidState(f"exec in container {rec.id}: its config.json is unreadable")
            prep = prepare_exec(spec, rec.pid, rec.pid_start, self._filters)
            self._exec_preps[rec.id] = prep
        return prep

    def adopt_exec_monitors(self, candidates: list[tuple[int, int]]) -> set[tuple[int, int]]:
        """Of ``candidates`` ((pid, start time) of monitors no container record claims, left
        by a previous user of this state that was killed), those serving an exec into a
        recorded container: a monitor is its process's subreaper, so the exec'd process and
        what it left are its descendants, in the container's cgroup. Those exec'd processes
        keep running, served by their monitors (stdio, exit record); deleting the container
        waits for the adopted monitors too. Returns the adopted ones; the rest are the
        caller's to end."""
        if not candidates:
            return set()
        owner = {pid: cid for cid in self.store.ids() for pid in self._pids_or_none(cid)}
        adopted = set()
        for monitor in candidates:
            found = [owner[p] for p, _ in proctree.tree(monitor[0])[1:] if p in owner]
            if found and process_start_time(monitor[0]) == monitor[1]:
                self._adopted_execs.setdefault(found[0], set()).add(monitor)
                adopted.add(monitor)
        return adopted

    def _pids_or_none(self, cid: str) -> list[int]:
        try:
            return self.ps(cid)
        except OCIRuntimeError:  # a state directory without a record: a create in progress
            return []

    def release_exec(self, result: Created) -> None:
        """Forget a finished exec: remove its exit file (exec probes would pile them up)."""
        for path in (result.exit_file, result.attach_socket):
            if path:
                _quiet(lambda p=path: os.unlink(p))

    def pause(self, cid: str) -> None:
        """Freeze every process of the container (cgroup freezer)."""
        _, status = self._status(cid)
        status.require(status.can_pause, "pause", cid)
        self._require_cgroups(cid).freeze()

    def resume(self, cid: str) -> None:
        """Thaw a paused container."""
        _, status = self._status(cid)
        status.require(status.can_resume, "resume", cid)
        self._require_cgroups(cid).thaw()

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        """Apply new OCI ``linux.resources`` to a live container."""
        from runtime.cgroups import Resources

        _, status = self._status(cid)
        status.require(status is not Status.STOPPED, "update", cid)
        self._require_cgroups(cid).set(Resources.from_oci(resources))

    def ps(self, cid: str) -> list[int]:
        """Host pids of every process in the container."""
        rec, status = self._status(cid)
        cg = self._cgroups(cid)
        if cg is not None:
            return sorted(cg.pids())
        return [rec.pid] if status is not Status.STOPPED else []

    def stats(self, cid: str) -> Any:
        """The container's cgroup statistics (``runtime.cgroups.CgroupStats``)."""
        return self._require_cgroups(cid).stats()

    def attach(self, cid: str, timeout: float | None = None) -> AttachClient:
        """A client on the container's attach socket (stdio streams, resize, reopen).

        Raises InvalidState when the container has no attach socket (inherited stdio or an
        external console socket) or its monitor is gone.
        """
        rec = self.store.load(cid)
        if rec is None or not rec.attach_socket:
            raise InvalidState(f"container {cid} has no attach socket")
        try:
            return AttachClient(rec.attach_socket, timeout)
        except OSError as e:
            raise InvalidState(f"attaching to container {cid}: {e}") from e

    def reopen_log(self, cid: str, timeout: float = 5.0) -> None:
        """Make the monitor reopen the CRI log file (after the kubelet rotated it)."""
        rec = self.store.load(cid)
        if rec is None or not rec.attach_socket:
            raise InvalidState(f"container {cid} has no monitor socket")
        try:
            reopen_log(rec.attach_socket, timeout)
        except OSError as e:
            raise InvalidState(f"reopening the log of container {cid}: {e}") from e

    def features(self) -> dict[str, Any]:
        """runtime-spec features.md document."""
        return _features()

    # -- helpers -------------------------------------------------------------------------------
    def _spec(self, cid: str) -> Spec | None:
        if cid not in self._specs:
            try:
                self._specs[cid] = load_spec(str(self.store.dir(cid)))
            except OCIRuntimeError:
                return None
        return self._specs[cid]

    def _cgroups(self, cid: str) -> Cgroups | None:
        if cid not in self._cgroup_managers:
            spec = self._spec(cid)
            if spec is None:
                return None
            try:
                self._cgroup_managers[cid] = open_cgroups(spec, cid)
            except OCIRuntimeError:
                return None
        return self._cgroup_managers[cid]

    def _require_cgroups(self, cid: str) -> Cgroups:
        cg = self._cgroups(cid)
        if cg is None:
            raise OCIRuntimeError(f"container {cid}: cgroup support is not available")
        return cg


def _check_preserved(req: CreateRequest | ExecRequest) -> None:
    if len(req.preserve_fds) > MAX_PRESERVED_FDS:
        raise RequestError(f"{len(req.preserve_fds)} fds to preserve: at most "
                           f"{MAX_PRESERVED_FDS} can be passed to the process")


def _stdio_mode(terminal: bool, console_socket: Path | None,
                stdio: tuple[int, int, int] | None) -> str:
    if terminal:
        return "console" if console_socket else "terminal"
    return "inherit" if stdio is not None else "pipes"


def _opt(p: Path | str | None) -> str | None:
    return str(p) if p else None


def _with_root(process: dict[str, Any]) -> dict[str, Any]:
    return {"cwd": "/", **process}


def _write_pid_file(path: Path, pid: int) -> None:
    from runtime.linux.atomic import write_atomic

    write_atomic(os.path.abspath(path), str(pid).encode(), durable=False)  # as runc


def _quiet(fn: Any) -> Any:
    try:
        return fn()
    except (OSError, OCIRuntimeError):
        return None


def _error_from_reply(reply: dict, cid: str) -> OCIRuntimeError:
    """Rebuild the error the monitor reported, as the same named type where there is one."""
    from runtime import errors

    kind = getattr(errors, str(reply.get("type")), None)
    msg = f"creating container {cid}: {reply.get('error')}"
    if kind is errors.SpecError:
        return errors.SpecError("", msg)
    if isinstance(kind, type) and issubclass(kind, OCIRuntimeError):
        return kind(msg)
    return InitError(msg)
