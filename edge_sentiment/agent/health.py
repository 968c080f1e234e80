"""Health after install: a new model is on trial until a healthy window marks its slot good.

The agent sums its metrics windows. Before an update, the last ``BASELINE_WINDOWS`` windows are
the device's own baseline; from the activation on, the windows go into the trial. Once the
trial holds ``min_texts`` texts over ``min_seconds``, :func:`judge` compares it with the
baseline: the error share, p95 latency (against the baseline's, as a ratio), the low-confidence
share (an increase), and the class-mix and confidence PSI between the two. Healthy: the slot is
marked good. Unhealthy: the agent steps back to the previous slot and reports why. A trial with
no traffic for ``timeout_s`` is marked good on its load-time self-test alone, and says so.
``starts`` counts process starts during a trial: a model that crashes the process is stepped
back from at the next start once ``max_starts`` is reached (``edge-sentiment agent`` checks it
before it loads the model).

Pure: windows and rules in, verdicts out; the agent persists the trial (``trial.json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..metrics import CONFIDENCE_EDGES, psi

BASELINE_WINDOWS = 10
_BINS = len(CONFIDENCE_EDGES) - 1


@dataclass(frozen=True)
class HealthRules:
    min_texts: int = 200
    min_seconds: float = 300.0
    timeout_s: float = 3600.0
    max_error_share: float = 0.01
    max_p95_ratio: float = 2.0
    max_low_confidence_increase: float = 0.2
    max_class_psi: float = 0.25
    max_confidence_psi: float = 0.25
    max_starts: int = 3


@dataclass
class Window:
    """Counts summed over metrics windows (``MetricsRecorder.snapshot`` bodies)."""

    texts: int = 0
    errors: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    confidence: list[int] = field(default_factory=lambda: [0] * _BINS)
    low: float = 0.0  # texts under the low-confidence threshold
    p95_weighted: float = 0.0  # sum of window p95 x window count

    def add(self, body: dict[str, Any]) -> None:
        n = int(body.get("count") or 0)
        self.texts += n
        self.errors += int(body.get("errors") or 0)
        for label, c in (body.get("labels") or {}).items():
            self.labels[label] = self.labels.get(label, 0) + int(c)
        conf = body.get("confidence") or {}
        for i, c in enumerate((conf.get("histogram") or [])[:_BINS]):
            self.confidence[i] += int(c)
        self.low += (conf.get("low_share") or 0.0) * n
        p95 = (body.get("latency_ms") or {}).get("p95")
        if p95 is not None:
            self.p95_weighted += float(p95) * n

    @property
    def p95(self) -> float | None:
        return self.p95_weighted / self.texts if self.texts else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        return cls(**data)


def baseline(windows: list[dict[str, Any]]) -> Window:
    out = Window()
    for body in windows[-BASELINE_WINDOWS:]:
        out.add(body)
    return out


@dataclass(frozen=True)
class Verdict:
    state: str  # "wait", "healthy" or "unhealthy"
    reason: str
    figures: dict[str, float | None]


def _share(counts: dict[str, int], labels: list[str], n: int) -> list[float]:
    return [counts.get(label, 0) / n for label in labels]


def figures(before: Window, after: Window) -> dict[str, float | None]:
    n = after.texts
    out: dict[str, float | None] = {
        "texts": float(n), "error_share": after.errors / max(1, n + after.errors),
        "p95_ms": after.p95, "baseline_p95_ms": before.p95,
        "low_confidence_share": after.low / n if n else None,
        "baseline_low_confidence_share": before.low / before.texts if before.texts else None,
        "class_psi": None, "confidence_psi": None}
    if n and before.texts:
        labels = sorted(set(before.labels) | set(after.labels))
        out["class_psi"] = round(psi(_share(before.labels, labels, before.texts),
                                     _share(after.labels, labels, n)), 4)
        out["confidence_psi"] = round(psi([c / before.texts for c in before.confidence],
                                          [c / n for c in after.confidence]), 4)
    return out


def judge(before: Window, after: Window, elapsed_s: float, starts: int,
          rules: HealthRules = HealthRules()) -> Verdict:
    """The trial's verdict now: wait for more, healthy, or unhealthy with the first reason."""
    f = figures(before, after)
    if starts > rules.max_starts:
        return Verdict("unhealthy", f"crash loop: {starts} starts during the trial "
                       f"(limit {rules.max_starts})", f)
    if after.texts < rules.min_texts or elapsed_s < rules.min_seconds:
        if elapsed_s >= rules.timeout_s:
            return Verdict("healthy", f"no traffic to judge: {after.texts} texts in "
                           f"{elapsed_s:.0f} s; good on its self-test alone", f)
        return Verdict("wait", "", f)
    checks = [
        ("error share", f["error_share"], rules.max_error_share),
        ("p95 latency ratio", None if not f["p95_ms"] or not f["baseline_p95_ms"]
         else f["p95_ms"] / f["baseline_p95_ms"], rules.max_p95_ratio),
        ("low-confidence share increase", None if f["low_confidence_share"] is None
         or f["baseline_low_confidence_share"] is None
         else f["low_confidence_share"] - f["baseline_low_confidence_share"],
         rules.max_low_confidence_increase),
        ("class-mix PSI", f["class_psi"], rules.max_class_psi),
        ("confidence PSI", f["confidence_psi"], rules.max_confidence_psi),
    ]
    for name, value, limit in checks:
        if value is not None and value > limit:
            return Verdict("unhealthy", f"{name} {value:.3f} over {limit}", f)
    return Verdict("healthy", "", f)


@dataclass
class Trial:
    """A model on trial, persisted in the state folder so a restart resumes it."""

    version: str
    started: float
    before: Window
    after: Window = field(default_factory=Window)
    starts: int = 1
    skip: int = 1  # windows still to leave out: the one the switch happened in mixes models

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "started": self.started, "starts": self.starts,
                "skip": self.skip, "before": self.before.to_json(), "after": self.after.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trial:
        return cls(str(data["version"]), float(data["started"]), Window.from_json(data["before"]),
                   Window.from_json(data["after"]), int(data["starts"]), int(data.get("skip", 0)))
