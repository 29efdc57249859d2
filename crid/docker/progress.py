"""Docker's JSON progress streams (pull, push): the line format the CLI draws as bars, and a
worker thread whose progress events reach the response body through a queue."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_END = object()


def line(**fields: Any) -> bytes:
    return json.dumps(fields).encode() + b"\r\n"


def error_line(exc: BaseException) -> bytes:
    """A stream's failure: its last line (the status is already 200)."""
    message = str(exc) or type(exc).__name__
    return line(errorDetail={"message": message}, error=message)


def bar(current: int, total: int) -> str:
    """The `progress` text the CLI prints when it is not drawing on a terminal."""
    width = 50
    filled = width * current // total if total else 0
    arrow = ">" if filled < width else ""
    return f"[{'=' * filled}{arrow}{' ' * (width - filled - len(arrow))}] " \
           f"{human_size(current)}/{human_size(total)}"


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}B"


@dataclass
class Outcome(Generic[T]):
    """What the worker returned, or what it raised."""

    value: T | None = None
    error: BaseException | None = None


def in_worker(work: Callable[[Callable[[Any], None]], T], name: str,
              outcome: Outcome[T]) -> Iterator[Any]:
    """Runs `work(report)` in a thread; yields each event it reports, in order, and fills
    `outcome` before the iterator ends."""
    events: queue.Queue[Any] = queue.Queue()

    def run() -> None:
        try:
            outcome.value = work(events.put)
        except Exception as e:  # reported in the stream, which has already started
            outcome.error = e
        finally:
            events.put(_END)

    threading.Thread(target=run, name=name, daemon=True).start()
    while (item := events.get()) is not _END:
        yield item
