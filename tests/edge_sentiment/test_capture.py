"""Opt-in capture: what is kept, the bounds, redaction before storage, and erasure."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from edge_sentiment import SentimentClassifier
from edge_sentiment.capture import Capture, CaptureLimits, SampleStore

TINY = Path(__file__).parents[1] / "fixtures" / "tiny_bundle"
SCORES = {"negative": 0.2, "neutral": 0.5, "positive": 0.3}


def _store(tmp_path: Path, **limits: object) -> SampleStore:
    return SampleStore(tmp_path / "samples.sqlite", CaptureLimits(**limits))  # type: ignore[arg-type]


def test_store_keeps_the_newest_within_count_bytes_and_age(tmp_path: Path) -> None:
    store = _store(tmp_path, max_samples=5, max_bytes=10_000, min_chars=5)
    for i in range(8):
        store.add("feedback", f"sample text {i}", "1.0", "neutral", SCORES)
    assert [r["text"] for r in store.rows()] == [f"sample text {i}" for i in range(3, 8)]
    assert not store.add("feedback", "tiny", "1.0", "neutral", SCORES)  # under min_chars
    for sub in ("b", "c"):
        (tmp_path / sub).mkdir()
    small = _store(tmp_path / "b", max_bytes=1000, min_chars=5)
    for i in range(10):
        small.add("drift", f"{i}" + "x" * 299, "1.0", "neutral", SCORES)
    assert len(small.rows()) == 3 and small.rows()[-1]["text"].startswith("9")
    old = _store(tmp_path / "c", max_age_s=0.2, min_chars=5)
    old.add("drift", "an old sample text", "1.0", "neutral", SCORES)
    time.sleep(0.3)
    old.add("drift", "a new sample text", "1.0", "neutral", SCORES)
    assert [r["text"] for r in old.rows()] == ["a new sample text"]


def test_capture_redacts_and_keeps_feedback_low_confidence_and_drift(tmp_path: Path) -> None:
    store = _store(tmp_path, low_confidence_rate=1.0, drift_texts=3)
    cap = Capture(store, seed=1)
    cap.seen("a", "mail me at jo@example.com about the refund", "1.0", "neutral", 0.9, SCORES)
    cap.seen("b", "not sure what to think of this blender", "1.0", "neutral", 0.4, SCORES)
    cap.labelled("a", "negative")
    cap.labelled("zzz", "negative")  # unknown id: nothing
    kinds = {(r["kind"], r["text"], r["label"]) for r in store.rows()}
    assert kinds == {("feedback", "mail me at [email] about the refund", "negative"),
                     ("low_confidence", "not sure what to think of this blender", None)}
    cap.window_closed(drifted=False)
    for i in range(5):
        cap.seen(f"w{i}", f"window text number {i} here", "1.0", "positive", 0.9, SCORES)
    cap.window_closed(drifted=True)
    assert sum(r["kind"] == "drift" for r in store.rows()) == 3  # the window's reservoir


def test_purge_erases_the_text_from_the_file(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add("feedback", "a very secret complaint about my order", "1.0", "negative", SCORES)
    store.close()
    done = subprocess.run([sys.executable, "-m", "edge_sentiment", "capture", "purge",
                           "--state-dir", str(tmp_path), "--json"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0 and json.loads(done.stdout)["purged"] == 1, done.stderr
    data = b"".join(p.read_bytes() for p in tmp_path.glob("samples.sqlite*"))
    assert b"secret complaint" not in data
    listed = subprocess.run([sys.executable, "-m", "edge_sentiment", "capture", "list",
                             "--state-dir", str(tmp_path), "--json"], capture_output=True,
                            text=True, check=False)
    assert json.loads(listed.stdout) == {"samples": []}
    bad = subprocess.run([sys.executable, "-m", "edge_sentiment", "capture", "list",
                          "--state-dir", str(tmp_path / "nope")], capture_output=True, text=True,
                         check=False)
    assert bad.returncode == 2 and "no such folder" in bad.stderr


def test_the_classifier_hands_predictions_to_capture(tmp_path: Path) -> None:
    clf = SentimentClassifier.load(TINY, runtime="onnx")
    store = _store(tmp_path, low_confidence_rate=0.0)
    clf.capture = Capture(store)
    pred = clf.classify("the blender arrived with a cracked jar, call 555-010-9999")
    clf.feedback(pred.id, "negative")
    rows = store.rows()
    assert [(r["kind"], r["label"], r["predicted"]) for r in rows] == \
        [("feedback", "negative", pred.label)]
    assert "[phone]" in rows[0]["text"] and "555" not in rows[0]["text"]
