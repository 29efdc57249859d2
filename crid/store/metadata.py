"""Crash-safe metadata for pods and containers: SQLite in WAL mode, mirrored in memory.

Every change is one SQLite transaction (synchronous=FULL), so a process killed at any instant
reopens to the state before or after that change, never a torn one. Reads are answered from the
in-memory index: the disk is the journal, not the index (the kubelet lists every second).

Concurrent changes are group-committed: the first caller to find no commit under way commits
every change queued meanwhile in one transaction (one fsync instead of one per caller, which
made ten concurrent RunPodSandbox calls queue behind each other's fsyncs); each caller returns
once its change is on disk. Should the group's transaction fail, each change is retried alone,
so one bad change fails only its own caller.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
"""


class StoreError(Exception):
    """The metadata database cannot be opened or written."""


@dataclass
class _Change:
    sql: str
    rows: list[tuple[Any, ...]]
    apply: Callable[[], None]            # the index update, once committed
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class MetadataStore:
    """Records (JSON objects) keyed by (kind, id), e.g. ("pod", "3fa2...")."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()        # the connection and the index
        self._queue_lock = threading.Lock()  # _queue and _committing
        self._queue: list[_Change] = []
        self._committing = False
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self._path, check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            rows = self._db.execute("SELECT kind, id, body FROM records").fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"opening metadata store {self._path}: {e}") from e
        self._index: dict[str, dict[str, dict[str, Any]]] = {}
        for kind, key, body in rows:
            self._index.setdefault(kind, {})[key] = json.loads(body)

    def put(self, kind: str, key: str, record: dict[str, Any]) -> None:
        """Inserts or replaces one record atomically."""
        self.put_many([(kind, key, record)])

    def put_many(self, items: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Writes several records in one transaction: all of them land, or none."""
        rows = [(k, i, json.dumps(r, sort_keys=True), json.loads(json.dumps(r)))
                for k, i, r in items]

        def apply() -> None:
            for kind, key, _, record in rows:
                self._index.setdefault(kind, {})[key] = record

        self._submit(_Change("INSERT OR REPLACE INTO records (kind, id, body) VALUES (?, ?, ?)",
                             [(k, i, body) for k, i, body, _ in rows], apply))

    def delete(self, kind: str, key: str) -> None:
        """Removes a record; removing an absent one is not an error."""
        def apply() -> None:
            self._index.get(kind, {}).pop(key, None)

        self._submit(_Change("DELETE FROM records WHERE kind = ? AND id = ?", [(kind, key)],
                             apply))

    def _submit(self, change: _Change) -> None:
        """Returns once ``change`` is committed (by this thread or by the one committing when
        it was queued). Raises StoreError."""
        with self._queue_lock:
            self._queue.append(change)
            lead = not self._committing
            self._committing = True
        if lead:
            while True:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                    if not group:
                        self._committing = False
                        break
                self._commit_group(group)
        change.done.wait()
        if change.error is not None:
            raise change.error

    def _commit_group(self, group: list[_Change]) -> None:
        try:
            with self._lock:
                self._transaction([(c.sql, c.rows) for c in group])
                for c in group:
                    c.apply()
        except BaseException as e:
            if len(group) > 1 and isinstance(e, StoreError):
                for c in group:  # retry alone: only the change at fault fails
                    self._commit_group([c])
                return
            for c in group:
                c.error = e
        for c in group:
            c.done.set()

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        record = self._index.get(kind, {}).get(key)
        return json.loads(json.dumps(record)) if record is not None else None

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(json.dumps(r)) for r in self._index.get(kind, {}).values()]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows in statements:
                    self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise StoreError(f"writing metadata store {self._path}: {e}") from e
