"""Logging set-up with structlog: human-readable on a terminal, JSON otherwise.

A processor scrubs secrets from every event: keys that name credentials and bearer tokens or
basic-auth strings inside values never reach a log.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|auth|credential|authorization", re.I)
_SECRET_TEXT = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
REDACTED = "<redacted>"


def redact(value: Any) -> Any:
    """Returns value with credentials replaced (recursively in dicts and lists)."""
    if isinstance(value, dict):
        return {k: REDACTED if _SECRET_KEYS.search(str(k)) and v else redact(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    if isinstance(value, str):
        return _SECRET_TEXT.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
    return value


def _scrub(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    return redact(dict(event))


def setup(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """Configures structlog for the whole process (called once by the daemon)."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "text" if stream.isatty() else "json"
    renderer: Any = (structlog.dev.ConsoleRenderer(colors=False) if fmt == "text"
                     else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )


def get(name: str = "crid") -> Any:
    return structlog.get_logger(name)
