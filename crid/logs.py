"""Logging set-up with structlog: human-readable on a terminal, JSON otherwise.

Level and format can change at runtime (`reconfigure`, on SIGHUP): loggers are cached on first
use, so both live in one `_Settings` that the first and last processors read per event.

A processor scrubs secrets from every event: keys that name credentials and bearer tokens or
basic-auth strings inside values never reach a log.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

# structlog imports rich (and rich pygments: ~150 modules, ~8 MiB of a daemon's memory) whenever
# it is installed, only to offer pretty tracebacks; crid renders exceptions as plain text (see
# _Settings.apply). rich is no dependency of crid: it comes into a dev venv with import-linter.
# Telling the import system it is absent keeps the daemon as lean there as on a node; a process
# that imported rich before this keeps it.
sys.modules.setdefault("rich", None)  # type: ignore[arg-type]

import structlog  # noqa: E402 - after the line above, which it depends on

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


_LEVELS = logging.getLevelNamesMapping()
_METHOD_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "msg": logging.INFO,
                  "warning": logging.WARNING, "warn": logging.WARNING, "error": logging.ERROR,
                  "exception": logging.ERROR, "critical": logging.CRITICAL,
                  "fatal": logging.CRITICAL}


class _Settings:
    """The current level and renderer, swapped whole by reconfigure()."""

    def __init__(self) -> None:
        self.level = logging.INFO
        self.stream: Any = sys.stderr
        self.renderer: Any = structlog.processors.JSONRenderer()

    def apply(self, level: str, fmt: str) -> None:
        if fmt == "auto":
            fmt = "text" if self.stream.isatty() else "json"
        self.renderer = (structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback) if fmt == "text"
                         else structlog.processors.JSONRenderer())
        self.level = _LEVELS[level.upper()]

    def drop_below_level(self, _logger: Any, method: str,
                         event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if _METHOD_LEVELS.get(method, logging.INFO) < self.level:
            raise structlog.DropEvent
        return event

    def render(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        return self.renderer(logger, method, event)


_settings = _Settings()


def setup(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """Configures structlog for the whole process (called once by the daemon)."""
    _settings.stream = stream or sys.stderr
    _settings.apply(level, fmt)
    structlog.configure(
        processors=[
            _settings.drop_below_level,  # first: a dropped event costs one comparison
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrub,
            _settings.render,
        ],
        logger_factory=structlog.PrintLoggerFactory(_settings.stream),
        cache_logger_on_first_use=True,
    )


def reconfigure(level: str, fmt: str) -> None:
    """Changes level and format of every logger, cached ones included (a reload)."""
    _settings.apply(level, fmt)


def get(name: str = "crid") -> Any:
    return structlog.get_logger(name)
