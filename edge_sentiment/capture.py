"""Opt-in sample capture on a device: redacted texts worth a label, bounded, erasable.

Off unless the agent's config says ``capture = true``. Then the agent's classifier hands every
prediction to :class:`Capture`, which stores (``samples.sqlite`` in the state folder):

- ``feedback``: a text whose true label an app gave (``feedback(id, label)``);
- ``low_confidence``: a sample (``capture_low_confidence_rate``) of texts under the low-confidence
  threshold;
- ``drift``: the texts held from a metrics window that raised a drift alert (a reservoir of
  ``capture_drift_texts`` per window).

Before anything is stored, the text is redacted (``redact.py``) and a text shorter than
``capture_min_chars`` after redaction is left out. The store is bounded by count, bytes and age
(oldest first). Texts waiting for feedback stay in memory only, at most ``pending_max``.
Nothing leaves the device unless ``upload_samples = true`` (the agent then sends each sample
once, on its own topic). ``purge()`` (``edge-sentiment capture purge``) erases the store.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .redact import redact

KINDS = ("feedback", "low_confidence", "drift")


@dataclass(frozen=True)
class CaptureLimits:
    max_samples: int = 1000
    max_bytes: int = 1_000_000  # of stored text, UTF-8
    max_age_s: float = 7 * 86400.0
    min_chars: int = 20
    max_chars: int = 2000  # a longer text is cut before it is held or stored
    low_confidence: float = 0.5
    low_confidence_rate: float = 0.1
    drift_texts: int = 20
    pending_max: int = 1000


_SCHEMA = """CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, kind TEXT NOT NULL,
    text TEXT NOT NULL, bytes INTEGER NOT NULL, model_version TEXT NOT NULL,
    predicted TEXT NOT NULL, scores TEXT NOT NULL, label TEXT, uploaded INTEGER DEFAULT 0)"""


class SampleStore:
    """The bounded SQLite store of redacted samples."""

    def __init__(self, path: Path, limits: CaptureLimits) -> None:
        self.path, self.limits = path, limits
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def add(self, kind: str, text: str, version: str, predicted: str, scores: dict[str, float],
            label: str | None = None) -> bool:
        """Store one sample (already redacted); False when too short to keep."""
        if len(text) < self.limits.min_chars:
            return False
        size = len(text.encode("utf-8"))
        with self._lock:
            self._db.execute("INSERT INTO samples (ts, kind, text, bytes, model_version, predicted,"
                             " scores, label) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (time.time(), kind, text, size, version, predicted,
                              json.dumps(scores), label))
            self._trim()
            self._db.commit()
        return True

    def _trim(self) -> None:
        lim = self.limits
        self._db.execute("DELETE FROM samples WHERE ts < ?", (time.time() - lim.max_age_s,))
        self._db.execute("DELETE FROM samples WHERE id NOT IN (SELECT id FROM samples ORDER BY id"
                         " DESC LIMIT ?)", (lim.max_samples,))
        while True:
            total = self._db.execute("SELECT COALESCE(SUM(bytes), 0) FROM samples").fetchone()[0]
            if total <= lim.max_bytes:
                return
            self._db.execute("DELETE FROM samples WHERE id = (SELECT MIN(id) FROM samples)")

    def rows(self, only_new: bool = False) -> list[dict[str, Any]]:
        query = "SELECT id, ts, kind, text, model_version, predicted, scores, label FROM samples"
        with self._lock:
            cur = self._db.execute(query + (" WHERE uploaded = 0" if only_new else "")
                                   + " ORDER BY id")
            out = cur.fetchall()
        keys = ("id", "ts", "kind", "text", "model_version", "predicted", "scores", "label")
        return [dict(zip(keys, r[:6]), scores=json.loads(r[6]), label=r[7]) for r in out]

    def mark_uploaded(self, ids: list[int]) -> None:
        with self._lock:
            self._db.executemany("UPDATE samples SET uploaded = 1 WHERE id = ?",
                                 [(i,) for i in ids])
            self._db.commit()

    def purge(self) -> int:
        """Erase every sample; returns how many there were."""
        with self._lock:
            n = int(self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
            self._db.execute("DELETE FROM samples")
            self._db.commit()
            self._db.execute("VACUUM")  # the deleted text leaves the file too
        return n

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Capture:
    """The classifier's hook (``SentimentClassifier.capture``): decides what to keep."""

    def __init__(self, store: SampleStore, seed: int | None = None) -> None:
        self.store, self.limits = store, store.limits
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, tuple[str, str, str, dict[str, float]]] = OrderedDict()
        self._window: list[tuple[str, str, str, dict[str, float]]] = []
        self._seen = 0
        self._rng = random.Random(seed)

    def seen(self, pid: str, text: str, version: str, label: str, score: float,
             scores: dict[str, float]) -> None:
        """One prediction: held for feedback and the drift reservoir, sampled if unsure."""
        clean = redact(text[:self.limits.max_chars])
        row = (clean, version, label, scores)
        with self._lock:
            self._pending[pid] = row
            while len(self._pending) > self.limits.pending_max:
                self._pending.popitem(last=False)
            self._seen += 1
            if len(self._window) < self.limits.drift_texts:
                self._window.append(row)
            else:
                j = self._rng.randrange(self._seen)
                if j < self.limits.drift_texts:
                    self._window[j] = row
            sample = score < self.limits.low_confidence \
                and self._rng.random() < self.limits.low_confidence_rate
        if sample:
            self.store.add("low_confidence", clean, version, label, scores)

    def labelled(self, pid: str, label: str) -> None:
        with self._lock:
            row = self._pending.pop(pid, None)
        if row is not None:
            self.store.add("feedback", row[0], row[1], row[2], row[3], label)

    def window_closed(self, drifted: bool) -> None:
        """The agent's metrics window ended; keep its reservoir if it raised a drift alert."""
        with self._lock:
            held, self._window, self._seen = self._window, [], 0
        if drifted:
            for clean, version, label, scores in held:
                self.store.add("drift", clean, version, label, scores)
