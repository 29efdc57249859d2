"""The set-up child's handoff to the monitor (runtime.monitor.handoff, setup and launch): its
words, the monitor options it carries, and the fds it attaches."""

from __future__ import annotations

import _socket
import array
import os
import socket

from runtime.monitor.crilog import CriLogWriter
from runtime.monitor.handoff import handoff_words, set_up_in_child, take_handoff
from runtime.monitor.launch import _close_all_but, _options_from, _options_words
from runtime.monitor.options import MonitorOptions
from runtime.monitor.stdio import MonitorSide


def test_options_roundtrip_with_odd_paths() -> None:
    opts = MonitorOptions(container_id="c1", stdio_mode="terminal",
                          log_path="/var/log/pods/a b=c/0.log", exit_file=None,
                          attach_socket="/run/x/attach", stdin=True, stdin_once=False,
                          await_attach=True)
    words = [b"ok", b"pid=1", b"oom=0", *_options_words(opts)]
    handoff = take_handoff(b"\0".join(words))
    assert handoff is not None
    assert _options_from(handoff) == opts


def test_handoff_names_each_fd_once() -> None:
    mine = MonitorSide(outputs={1: 7}, stdin=7, pty=7)  # a terminal: the pty is all three
    words, fds = handoff_words(42, 3, mine, None, None)
    handoff = take_handoff(b"\0".join(words))
    assert fds == [7]
    assert handoff == {b"pid": b"42", b"oom": b"3", b"out1": b"0", b"stdin": b"0",
                       b"pty": b"0"}


def test_failure_and_silence_are_not_handoffs() -> None:
    assert take_handoff(b"failed") is None
    assert take_handoff(b"") is None


def test_files_named_for_removal_are_removed_even_on_failure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The set-up child may be in the container's mount namespace by then: the monitor
    removes the console and attach sockets' files for it."""
    console, attach = tmp_path / ".console-1.sock", tmp_path / "attach"
    console.touch()
    attach.touch()
    assert take_handoff(b"failed\0unlink.console=%s\0unlink.attach=%s"
                        % (bytes(console), bytes(attach))) is None
    assert not console.exists() and not attach.exists()
    console.touch()
    assert take_handoff(b"ok\0pid=5\0oom=0\0unlink.console=%s" % bytes(console)) == {
        b"pid": b"5", b"oom": b"0", b"unlink.console": bytes(console)}
    assert not console.exists()


def test_set_up_in_child_passes_fds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A real fork: the child's pipe and log fd arrive in the parent and still work."""
    log_path = str(tmp_path / "log")

    def set_up(sock: _socket.socket) -> int:
        r, w = os.pipe()
        os.write(w, b"from the child")
        log = CriLogWriter(log_path)
        words, fds = handoff_words(os.getpid(), 0, MonitorSide(outputs={1: r}), log, None)
        sock.sendmsg([b"\0".join(words)],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        return 0

    # set_up_in_child points the caller's 0-2 at /dev/null: run it in a child of our own.
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            child, msg, fds = set_up_in_child(set_up)
            handoff = take_handoff(msg)
            assert handoff is not None and int(handoff[b"pid"]) == child
            assert os.read(fds[int(handoff[b"out1"])], 100) == b"from the child"
            CriLogWriter(log_path, fds[int(handoff[b"log"])]).write(1, b"line\n")
            os.waitpid(child, 0)
            code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert open(log_path, "rb").read().endswith(b" stdout F line\n")


def test_close_all_but_keeps_only_those() -> None:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            r, w = os.pipe()
            _close_all_but({0, 1, 2, w})
            os.fstat(w)  # kept
            code = 2
            for fd in [r, *range(3, 256)]:
                if fd != w:
                    try:
                        os.fstat(fd)
                        break
                    except OSError:
                        pass
            else:
                code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
