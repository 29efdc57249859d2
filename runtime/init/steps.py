"""Helpers shared by the forked children of spawn_init and exec_in."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from runtime.errors import InitError, OCIRuntimeError
from runtime.init.channel import Channel
from runtime.seccomp import CompiledFilter, install_filter, prepare_filter


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    """Turn any failure inside into InitError("<what>: <cause>")."""
    try:
        yield
    except InitError:
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
            ch.send("error", message=msg)
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
