"""Labelled outcomes: ids, the bounded windows, per-version figures."""

from __future__ import annotations

import pytest

from edge_sentiment.errors import FeedbackError, FeedbackReason, InputError
from edge_sentiment.outcomes import Outcome, OutcomeWindow, summarize

LABELS = ("negative", "neutral", "positive")


def test_summary_of_a_known_confusion() -> None:
    outcomes = [Outcome("1", p, t) for p, t in [("positive", "positive"), ("negative", "positive"),
                                                ("negative", "negative"), ("neutral", "neutral")]]
    s = summarize(outcomes, LABELS)
    assert s["count"] == 4 and s["accuracy"] == 0.75
    assert s["confusion"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]  # rows: true label
    assert s["recall"] == {"negative": 1.0, "neutral": 1.0, "positive": 0.5}
    # F1: negative 2/3, neutral 1, positive 2/3
    assert s["macro_f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3, abs=1e-4)
    assert summarize([], LABELS)["accuracy"] is None


def test_each_id_takes_one_label_and_counts_for_its_own_model() -> None:
    w = OutcomeWindow(LABELS)
    old = w.issue("1.0.0", "positive")
    new = w.issue("2.0.0", "negative")
    assert len(old) == 16 and old != new
    w.feedback(old, "negative")
    w.feedback(new, "negative")
    assert w.stats("2.0.0")["accuracy"] == 1.0  # the old model's miss is not the new one's
    assert w.stats("1.0.0")["accuracy"] == 0.0 and w.stats("2.0.0")["feedback_total"] == 2
    with pytest.raises(FeedbackError) as err:
        w.feedback(new, "positive")
    assert err.value.reason is FeedbackReason.UNKNOWN_ID and isinstance(err.value, InputError)


@pytest.mark.parametrize("pid, label, reason", [
    ("nope", "positive", FeedbackReason.UNKNOWN_ID),
    (None, "positive", FeedbackReason.UNKNOWN_ID),
    ("x", "Positive", FeedbackReason.BAD_LABEL),
    ("x", 2, FeedbackReason.BAD_LABEL),
])
def test_bad_feedback_is_refused_with_a_reason(pid: object, label: object,
                                               reason: FeedbackReason) -> None:
    with pytest.raises(FeedbackError) as err:
        OutcomeWindow(LABELS).feedback(pid, label)
    assert err.value.reason is reason and "\n" not in str(err.value)


def test_both_windows_stay_bounded() -> None:
    w = OutcomeWindow(LABELS, pending_max=10, window=5)
    ids = [w.issue("1", "neutral") for _ in range(30)]
    with pytest.raises(FeedbackError):
        w.feedback(ids[0], "neutral")  # expired: only the newest 10 wait
    for pid in ids[-10:]:
        w.feedback(pid, "neutral")
    assert w.stats("1")["count"] == 5 and w.stats("1")["feedback_total"] == 10
