"""Store and forward: an on-disk SQLite (WAL) queue of outgoing MQTT messages.

Every event is written here first and deleted only after the broker's PUBACK.
The row id is the per-device sequence number: it only increases, across
restarts and evictions (AUTOINCREMENT never reuses ids). The queue is bounded;
when full the oldest rows are evicted and the count goes into the next message.

Faults: a full disk (SQLITE_FULL) evicts the oldest half of the queue and tries once more;
if that fails too the message is dropped and counted in ``lost`` (the queue stops growing, and
recovers by itself once space returns). A file SQLite cannot read is moved aside
(``outbox.sqlite.corrupt-<time>``) and a new queue started; ``reset_reason`` says so once.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    seq: int
    topic: str
    payload: bytes
    retain: bool


def _is_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


class Outbox:
    def __init__(self, path: Path, max_messages: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._max = max_messages
        self.lost = 0  # messages dropped because the disk was full
        self.reset_reason = ""  # set when a corrupt queue was moved aside at open
        try:
            self._db = self._open(path)
        except sqlite3.DatabaseError as exc:
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{path}{suffix}")
                if src.exists():
                    os.replace(src, Path(f"{aside}{suffix}"))
            self.reset_reason = f"{type(exc).__name__}: {exc}; moved to {aside.name}"
            log.error("outbox %s unreadable (%s): moved aside, starting a new one", path, exc)
            self._db = self._open(path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY "
                       "AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, "
                       "retain INTEGER NOT NULL, created REAL NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER)")
            db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def put(self, topic: str, build: Callable[[int, int], dict[str, Any]], retain: bool = False) -> int:
        """Insert a message whose JSON body ``build(seq, evicted)`` makes; return its seq (0 if
        the disk was full even after evicting: the message is then counted in ``lost``)."""
        with self._lock:
            for attempt in range(2):
                try:
                    return self._put_locked(topic, build, retain)
                except sqlite3.OperationalError as exc:
                    if not _is_full(exc):
                        raise
                    log.warning("outbox: disk full (attempt %d): %s", attempt + 1, exc)
                    self._shed_locked()
            self.lost += 1
            return 0

    def _put_locked(self, topic: str, build: Callable[[int, int], dict[str, Any]],
                    retain: bool) -> int:
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
            if db.in_transaction:  # SQLite may have rolled back already (disk full)
                db.execute("ROLLBACK")
            raise
        return seq

    def _shed_locked(self) -> None:
        """Disk full: drop the oldest half of the queue (counted as evicted) to make room."""
        try:
            (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
            drop = max(1, int(count) // 2)
            self._db.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY "
                             "seq LIMIT ?)", (drop,))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('evicted', COALESCE((SELECT v "
                             "FROM meta WHERE k='evicted'), 0) + ?)", (drop,))
        except sqlite3.OperationalError as exc:
            log.warning("outbox: could not shed rows on a full disk: %s", exc)

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
