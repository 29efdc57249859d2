"""`.dockerignore` patterns, matched as moby's patternmatcher matches them.

A pattern matches a path when it matches the path itself or any directory above it; the last
pattern that matches decides, and `!` patterns re-include. `*` and `?` stay within one path
component, `**` spans any number of them, `[...]` is a character class and `\\` escapes.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]


def parse(text: str) -> list[Pattern]:
    """The patterns of a `.dockerignore` file (comments and blank lines skipped).

    Raises:
        ValueError: a pattern that does not compile (an unclosed `[`).
    """
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        cleaned = posixpath.normpath(line).lstrip("/") if line else ""
        if not cleaned or cleaned == ".":
            continue
        try:
            out.append(Pattern(cleaned, exclusion, re.compile(_translate(cleaned))))
        except re.error as e:
            raise ValueError(f".dockerignore pattern {raw.strip()!r}: {e}") from None
    return out


def excluded(path: str, patterns: list[Pattern]) -> bool:
    """Whether `path` (relative to the context root, `/`-separated) is left out."""
    parents = _parents(path)
    verdict = False
    for p in patterns:
        if any(p.regex.match(candidate) for candidate in parents):
            verdict = not p.exclusion
    return verdict


def _parents(path: str) -> list[str]:
    parts = [c for c in path.split("/") if c not in ("", ".")]
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _translate(pattern: str) -> str:
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1:i + 2] == "*":
                i += 1
                if pattern[i + 1:i + 2] == "/":
                    i += 1
                out.append(".*" if i + 1 >= len(pattern) else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise re.error("unclosed character class")
            body = pattern[i + 1:end].replace("\\", "\\\\")
            if body.startswith("^"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return "".join(out)


def prune(root: str, patterns: list[Pattern]) -> None:
    """Delete what the patterns exclude from the tree at `root`; an excluded directory stays
    while something under it is re-included (`!`)."""
    if not patterns:
        return
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if excluded(rel, patterns):
                os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            full = os.path.join(dirpath, name)
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not os.path.islink(full) and excluded(rel, patterns) and not os.listdir(full):
                os.rmdir(full)
