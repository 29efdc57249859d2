"""Helpers shared by the forked children of spawn_init and exec_in."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from runtime.errors import InitError, OCIRuntimeError, UnsupportedMount
from runtime.init import process
from runtime.init.channel import Channel, pair
from runtime.linux import libc
from runtime.seccomp import CompiledFilter, install_filter, prepare_filter
from runtime.spec.model import Process


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    """Turn any failure inside into InitError("<what>: <cause>")."""
    try:
        yield
    except (InitError, UnsupportedMount):
        raise
    except (OSError, OCIRuntimeError, ValueError) as e:
        raise InitError(f"{what}: {e}") from e


def run_child(fn: Callable[[], Any], ch: Channel) -> NoReturn:
    """Body of a forked child: run fn, report any exception over ch, never return."""
    code = 1
    try:
        fn()
        code = 0
    except BaseException as e:  # noqa: BLE001 - everything must reach the parent as text
        msg = str(e) if isinstance(e, InitError) else f"{type(e).__name__}: {e}"
        try:
            ch.send_error(e)
        except OSError:
            with contextlib.suppress(OSError):
                os.write(2, f"container init: {msg}\n".encode())
    finally:
        os._exit(code)


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ; ignored signals survive execve, so restore them."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def compile_seccomp(cfg: dict[str, Any] | None) -> CompiledFilter | None:
    """Validate and compile linux.seccomp in the parent, so a bad profile fails before any
    fork and the child only loads bytes. Raises SpecError / SeccompError."""
    return None if cfg is None else prepare_filter(cfg)


def install_seccomp(compiled: CompiledFilter | None) -> None:
    """Load the compiled filter into the calling process (last step before execve)."""
    if compiled is not None:
        with step("installing seccomp filter"):
            install_filter(compiled)


def kill_and_reap(pid: int | None) -> None:
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def drop_privileges(proc: Process, seccomp: CompiledFilter | None) -> None:
    """User, groups, capabilities, AppArmor and no_new_privs, in that order. Without
    no_new_privs the seccomp filter needs CAP_SYS_ADMIN, so it is loaded first, as runc does;
    with it, the caller loads the filter last, right before execve."""
    if not proc.no_new_privileges:
        install_seccomp(seccomp)
    with step("setting user and capabilities"):
        process.set_user(proc)
    with step("apparmor"):
        process.apply_apparmor(proc.apparmor_profile)
    if proc.no_new_privileges:
        process.set_no_new_privs()


class Children:
    """The processes a parent forked for one creation: stage1 and the target it forks.

    ``supervise`` kills and reaps both when anything fails, so a failed create or exec never
    leaves a half-made process behind.
    """

    def __init__(self, stage1: int, channel: Channel) -> None:
        self.stage1 = stage1
        self.target: int | None = None
        self.channel = channel

    def reap_stage1(self) -> None:
        """Wait for stage1, which exits once it has reported the target (none in place)."""
        if self.stage1:
            os.waitpid(self.stage1, 0)
        self.stage1 = 0

    @contextlib.contextmanager
    def supervise(self, what: str) -> Iterator[None]:
        try:
            yield
        except BaseException as e:
            kill_and_reap(self.stage1)
            kill_and_reap(self.target)
            if isinstance(e, OSError | InitError):  # name the container in the message
                raise InitError(f"{what}: {e}") from e
            if isinstance(e, UnsupportedMount):
                raise UnsupportedMount(f"{what}: {e}") from e
            raise
        finally:
            self.channel.close()


def fork_stage1(body: Callable[[Channel], Any]) -> Children:
    """Become a child subreaper, fork a child running body(channel); return the parent side."""
    libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
    parent, child = pair()
    pid = os.fork()
    if pid == 0:
        parent.close()
        run_child(lambda: body(child), child)
    child.close()
    return Children(pid, parent)
