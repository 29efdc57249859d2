"""Foreground terminal for ``crid-runtime run``/``exec`` without ``--console-socket``: like
runc, proxy the caller's terminal to the container's pty (held by the monitor, reached over
its attach socket)."""

from __future__ import annotations

import json
import os
import select
import signal
import termios
import tty
from typing import Any

from runtime.monitor import framing
from runtime.monitor.attach import AttachClient


def proxy(client: AttachClient) -> int:
    """Copy stdin to the container and its output to stdout until it exits; return its
    exit code. The local terminal is put in raw mode meanwhile and window size changes are
    forwarded."""
    saved = _raw(0)

    def resize(*_: Any) -> None:
        try:
            size = os.get_terminal_size(0)
            client.resize(size.lines, size.columns)
        except OSError:
            pass  # not a terminal, or the monitor is already saying goodbye

    signal.signal(signal.SIGWINCH, resize)
    resize()
    try:
        return _pump(client)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _raw(fd: int) -> list | None:
    if not os.isatty(fd):
        return None
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    return saved


def _pump(client: AttachClient) -> int:
    sock = client.sock
    sock.settimeout(None)
    reading_stdin = True
    while True:
        fds = [sock] + ([0] if reading_stdin else [])
        ready, _, _ = select.select(fds, [], [])
        if 0 in ready:
            data = os.read(0, 4096)
            try:
                if data:
                    client.send_stdin(data)
                else:
                    reading_stdin = False
                    client.close_stdin()
            except OSError:  # the process is gone; its output and exit are still to read
                reading_stdin = False
        if sock in ready:
            try:
                frame = client.read_frame()
            except ConnectionResetError:
                frame = None
            if frame is None:
                return 255
            kind, payload = frame
            if kind in (framing.STDOUT, framing.STDERR):
                os.write(kind, payload)
            elif kind == framing.EXIT:
                return int(json.loads(payload)["exit_code"])
