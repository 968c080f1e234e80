"""Ground truth from apps: labelled outcomes of predictions, and the online accuracy they give.

Every prediction gets an id. An app that later learns the right label (a star rating, a support
agent's tag, a user's correction) calls ``SentimentClassifier.feedback(id, label)``. The window
keeps two bounded structures, so memory stays flat however long a device runs:

- the ids still waiting for feedback (the newest ``pending_max``; an older id has expired);
- the last ``window`` labelled outcomes, each with the model version that made the prediction,
  so a model swap does not mix the old model's record into the new one's accuracy.

No text is kept: an outcome is (model version, predicted label, true label).
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from .errors import FeedbackError, FeedbackReason

PENDING_MAX = 10_000  # about 2 MB of ids; feedback on an older prediction is refused
WINDOW = 1000


@dataclass(frozen=True)
class Outcome:
    version: str
    predicted: str
    label: str


def new_id() -> str:
    """A prediction id: 16 hex digits, unguessable, unique enough for a device's window."""
    return secrets.token_hex(8)


class OutcomeWindow:
    """Thread-safe: ``issue`` on every prediction, ``feedback`` when an app knows the label."""

    def __init__(self, labels: tuple[str, ...], pending_max: int = PENDING_MAX,
                 window: int = WINDOW) -> None:
        self._labels = labels
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._pending_max = pending_max
        self._outcomes: deque[Outcome] = deque(maxlen=window)
        self.total = 0  # feedback accepted since start

    def issue(self, version: str, predicted: str) -> str:
        pid = new_id()
        with self._lock:
            self._pending[pid] = (version, predicted)
            while len(self._pending) > self._pending_max:
                self._pending.popitem(last=False)
        return pid

    def feedback(self, pid: object, label: object) -> Outcome:
        """Record the true ``label`` of prediction ``pid``; each id takes one label."""
        if not isinstance(label, str) or label not in self._labels:
            raise FeedbackError(FeedbackReason.BAD_LABEL,
                                f"label must be one of {', '.join(self._labels)}, got {label!r}")
        if not isinstance(pid, str):
            raise FeedbackError(FeedbackReason.UNKNOWN_ID,
                                f"id must be a str, got {type(pid).__name__}")
        with self._lock:
            found = self._pending.pop(pid, None)
            if found is None:
                raise FeedbackError(FeedbackReason.UNKNOWN_ID,
                                    f"no prediction {pid[:40]!r} is waiting for feedback (never "
                                    f"issued here, already labelled, or older than the newest "
                                    f"{self._pending_max})")
            outcome = Outcome(found[0], found[1], label)
            self._outcomes.append(outcome)
            self.total += 1
        return outcome

    def stats(self, version: str) -> dict[str, Any]:
        """Online accuracy, macro-F1, per-class recall and the confusion matrix (rows: true
        label, columns: predicted, in ``labels`` order) of ``version``'s outcomes in the window."""
        with self._lock:
            mine = [o for o in self._outcomes if o.version == version]
            total = self.total
        return summarize(mine, self._labels) | {"feedback_total": total}


def summarize(outcomes: list[Outcome], labels: tuple[str, ...]) -> dict[str, Any]:
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for o in outcomes:
        confusion[index[o.label]][index[o.predicted]] += 1
    n = len(outcomes)
    correct = sum(confusion[i][i] for i in range(len(labels)))
    recall: dict[str, float | None] = {}
    f1s = []
    for i, label in enumerate(labels):
        true = sum(confusion[i])
        said = sum(row[i] for row in confusion)
        recall[label] = round(confusion[i][i] / true, 4) if true else None
        if true:
            f1s.append(2 * confusion[i][i] / (true + said))
    return {"count": n, "labels": list(labels), "confusion": confusion,
            "accuracy": round(correct / n, 4) if n else None,
            "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else None, "recall": recall}
