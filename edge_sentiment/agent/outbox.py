"""Store and forward: an on-disk SQLite (WAL) queue of outgoing MQTT messages.

Every event is written here first and deleted only after the broker's PUBACK.
The row id is the per-device sequence number: it only increases, across
restarts and evictions (AUTOINCREMENT never reuses ids). The queue is bounded;
when full the oldest rows are evicted and the count goes into the next message.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Message:
    seq: int
    topic: str
    payload: bytes
    retain: bool


class Outbox:
    def __init__(self, path: Path, max_messages: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._max = max_messages
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY "
                             "AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, "
                             "retain INTEGER NOT NULL, created REAL NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER)")

    def put(self, topic: str, build: Callable[[int, int], dict[str, Any]], retain: bool = False) -> int:
        """Insert a message whose JSON body ``build(seq, evicted)`` makes; return its seq."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                evicted = self._evict_locked()
                seq = int(db.execute("INSERT INTO outbox (topic, payload, retain, created) "
                                     "VALUES (?, x'', ?, ?)", (topic, int(retain), time.time()))
                          .lastrowid or 0)
                body = json.dumps(build(seq, evicted), separators=(",", ":")).encode()
                db.execute("UPDATE outbox SET payload=? WHERE seq=?", (body, seq))
                db.execute("INSERT OR REPLACE INTO meta VALUES ('evicted', 0)")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return seq

    def _evict_locked(self) -> int:
        """Drop the oldest rows beyond the bound; return evictions not yet reported."""
        (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        row = self._db.execute("SELECT v FROM meta WHERE k='evicted'").fetchone()
        pending = int(row[0]) if row else 0
        excess = count - self._max + 1
        if excess > 0:
            self._db.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq "
                             "LIMIT ?)", (excess,))
            pending += excess
        return pending

    def peek(self, after: int, limit: int) -> list[Message]:
        with self._lock:
            rows = self._db.execute("SELECT seq, topic, payload, retain FROM outbox WHERE seq > ? "
                                    "ORDER BY seq LIMIT ?", (after, limit)).fetchall()
        return [Message(int(s), str(t), bytes(p), bool(r)) for s, t, p, r in rows]

    def ack(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE seq=?", (seq,))

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()
