"""The fleet's dataset: captured samples in a database, and their export as ``convert`` data.

``fleet collect`` subscribes to ``<prefix>/samples/+`` and stores each checked sample (SQLite by
default, any SQLAlchemy URL such as ``postgresql+psycopg://user@host/db``). A redelivered QoS 1
message is stored once (unique device and seq). ``fleet samples forget DEVICE`` erases a
device's samples. ``fleet dataset export`` writes ``<out>/fleet/{train,dev,test}.tsv`` from
labelled samples and ``<out>/unlabeled/unlabeled.tsv`` from the rest, normalised as the shared
data is: whitespace runs become one space, duplicates keep one copy, a text with conflicting
labels is dropped, and the split is fixed by a hash of the text.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError, missing_extra
from ..manifest import LABELS

KINDS = ("feedback", "low_confidence", "drift")
MAX_TEXT = 4000
_SPACE = re.compile(r"\s+")

def _sa() -> Any:
    """SQLAlchemy, from the ``fleet`` extra (imported on first use)."""
    try:
        import sqlalchemy
    except ImportError as exc:
        raise missing_extra("sqlalchemy", "fleet") from exc
    return sqlalchemy


def _table(meta: Any) -> Any:
    s = _sa()
    return s.Table("samples", meta,
                   s.Column("id", s.Integer, primary_key=True, autoincrement=True),
                   s.Column("device", s.String(64), nullable=False, index=True),
                   s.Column("seq", s.BigInteger, nullable=False),
                   s.Column("ts", s.Float, nullable=False),
                   s.Column("kind", s.String(16), nullable=False),
                   s.Column("text", s.Text, nullable=False),
                   s.Column("model_version", s.String(64), nullable=False),
                   s.Column("predicted", s.String(16), nullable=False),
                   s.Column("scores", s.Text, nullable=False),
                   s.Column("label", s.String(16)),
                   s.UniqueConstraint("device", "seq", name="one_per_seq"))


class SampleDB:
    def __init__(self, url: str) -> None:
        s = _sa()
        try:
            self.engine = s.create_engine(url)
        except (s.exc.ArgumentError, ImportError) as exc:
            raise ConfigError(f"--db {url!r}: {exc}") from exc
        meta = s.MetaData()
        self.table = _table(meta)
        try:
            meta.create_all(self.engine)
        except s.exc.SQLAlchemyError as exc:
            raise ConfigError(f"--db: cannot open the database: {exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0]}") from exc

    def add(self, device: str, body: dict[str, Any]) -> bool:
        """Store one checked sample; False when it is a duplicate (same device and seq)."""
        s = _sa()
        try:
            with self.engine.begin() as conn:
                conn.execute(self.table.insert().values(device=device, **body))
        except s.exc.IntegrityError:
            return False
        return True

    def forget(self, device: str) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(self.table.delete().where(
                self.table.c.device == device)).rowcount)

    def rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                self.table.select().order_by(self.table.c.id))]


def check_sample(payload: bytes) -> dict[str, Any] | None:
    """The storable fields of one sample message, or None when it is not acceptable."""
    try:
        b = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(b, dict) or b.get("schema") != "edge-sentiment/sample/1":
        return None
    scores, seq = b.get("scores"), b.get("seq")
    ok = (b.get("kind") in KINDS and isinstance(b.get("text"), str)
          and 0 < len(b["text"]) <= MAX_TEXT and "\x00" not in b["text"]  # PostgreSQL text
          and b.get("predicted") in LABELS and b.get("label") in (*LABELS, None)
          and isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < 2 ** 63
          and isinstance(b.get("model_version"), str)
          and isinstance(b.get("ts"), (int, float)) and math.isfinite(b["ts"])
          and isinstance(scores, dict) and set(scores) <= set(LABELS)
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
                  for v in scores.values()))
    if not ok:
        return None
    return {"seq": b["seq"], "ts": float(b["ts"]), "kind": b["kind"], "text": b["text"],
            "model_version": b["model_version"][:64], "predicted": b["predicted"],
            "scores": json.dumps(scores), "label": b["label"]}


def split_of(text: str) -> str:
    """test, dev or train, fixed by a hash of the text (10 / 10 / 80)."""
    bucket = int(hashlib.md5(f"fleet-split-v1:{text}".encode()).hexdigest(), 16) % 100
    return "test" if bucket < 10 else "dev" if bucket < 20 else "train"


def export(rows: list[dict[str, Any]], out: Path, source: str = "fleet") -> dict[str, Any]:
    """Write the convert layout; return the counts (per split, duplicates, conflicts)."""
    labels: dict[str, Counter[str]] = defaultdict(Counter)
    unlabeled: dict[str, None] = {}
    for row in rows:
        text = _SPACE.sub(" ", str(row["text"])).strip()
        if not text:
            continue
        if row.get("label"):
            labels[text][str(row["label"])] += 1
        else:
            unlabeled[text] = None
    conflicts = [t for t, c in labels.items() if len(c) > 1]
    kept = {t: next(iter(c)) for t, c in labels.items() if len(c) == 1}
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "dev": [], "test": []}
    for text, label in kept.items():
        splits[split_of(text)].append((text, label))
    empty = [name for name, items in splits.items() if not items]
    if empty:
        raise InputError(f"the {' and '.join(empty)} split of {len(kept)} labelled texts would "
                         "be empty, and convert needs every split: collect more feedback first")
    (out / source).mkdir(parents=True, exist_ok=True)
    for name, items in splits.items():
        _write(out / source / f"{name}.tsv", "text\tlabel", items)
    plain = [(t, source) for t in unlabeled if t not in labels]
    (out / "unlabeled").mkdir(parents=True, exist_ok=True)
    _write(out / "unlabeled" / "unlabeled.tsv", "text\tsource", plain)
    return {"splits": {k: len(v) for k, v in splits.items()}, "unlabeled": len(plain),
            "conflicts_dropped": len(conflicts),
            "duplicates_merged": sum(sum(c.values()) - 1 for c in labels.values() if len(c) == 1)}


def _write(path: Path, header: str, items: list[tuple[str, str]]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(header + "\n")
        for a, b in items:
            fh.write(f"{a}\t{b}\n")
    tmp.replace(path)
