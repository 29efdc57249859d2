"""Crash-safe metadata for pods and containers: SQLite in WAL mode, mirrored in memory.

Every change is one SQLite transaction (synchronous=FULL), so a process killed at any instant
reopens to the state before or after that change, never a torn one. Reads are answered from the
in-memory index: the disk is the journal, not the index (the kubelet lists every second).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
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


class MetadataStore:
    """Records (JSON objects) keyed by (kind, id), e.g. ("pod", "3fa2...")."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
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
        rows = [(k, i, json.dumps(r, sort_keys=True), r) for k, i, r in items]
        with self._lock:
            self._transaction(
                "INSERT OR REPLACE INTO records (kind, id, body) VALUES (?, ?, ?)",
                [(k, i, body) for k, i, body, _ in rows])
            for kind, key, _, record in rows:
                self._index.setdefault(kind, {})[key] = json.loads(json.dumps(record))

    def delete(self, kind: str, key: str) -> None:
        """Removes a record; removing an absent one is not an error."""
        with self._lock:
            self._transaction("DELETE FROM records WHERE kind = ? AND id = ?", [(kind, key)])
            self._index.get(kind, {}).pop(key, None)

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        record = self._index.get(kind, {}).get(key)
        return json.loads(json.dumps(record)) if record is not None else None

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(json.dumps(r)) for r in self._index.get(kind, {}).values()]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise StoreError(f"writing metadata store {self._path}: {e}") from e
