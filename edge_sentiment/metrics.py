"""In-process metrics recorder: the classifier writes, the agent and server read.

Windows are bounded (a reservoir of latencies), so memory stays flat however
many texts pass. No raw text is kept.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

CONFIDENCE_EDGES = (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0000001)
_RESERVOIR = 4096
_EPS = 1e-4


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index between two distributions over the same bins."""
    total = 0.0
    for e, a in zip(expected, actual):
        e, a = max(e, _EPS), max(a, _EPS)
        total += (a - e) * math.log(a / e)
    return total


def histogram(values: list[float], edges: tuple[float, ...] = CONFIDENCE_EDGES) -> list[int]:
    counts = [0] * (len(edges) - 1)
    for v in values:
        for i in range(len(counts)):
            if edges[i] <= v < edges[i + 1]:
                counts[i] += 1
                break
    return counts


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def percentile(sorted_vals: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of sorted values (None when empty): the one definition
    used by the metrics windows and by ``bench``."""
    if not sorted_vals:
        return None
    idx = min(len(sorted_vals) - 1, max(0, math.ceil(q * len(sorted_vals)) - 1))
    return sorted_vals[idx]


@dataclass
class _Window:
    start: float = field(default_factory=time.time)
    count: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    confidences: list[int] = field(default_factory=lambda: [0] * (len(CONFIDENCE_EDGES) - 1))
    confidence_sum: float = 0.0
    low_confidence: int = 0
    length_sum: int = 0
    length_max: int = 0
    unknown_sum: float = 0.0


class MetricsRecorder:
    """Thread-safe counters for one window of predictions."""

    def __init__(self, labels: tuple[str, ...], reference: dict[str, Any] | None = None,
                 low_confidence: float = 0.5) -> None:
        self._lock = threading.Lock()
        self._labels = labels
        self.reference = reference or {}
        self.low_confidence = low_confidence
        self._w = _Window(labels={label: 0 for label in labels})
        self._rng = random.Random(0)

    def record(self, latency_s: float, label: str, confidence: float, length: int,
               unknown_share: float) -> None:
        with self._lock:
            w = self._w
            w.count += 1
            if len(w.latencies) < _RESERVOIR:
                w.latencies.append(latency_s)
            else:
                j = self._rng.randrange(w.count)
                if j < _RESERVOIR:
                    w.latencies[j] = latency_s
            w.labels[label] = w.labels.get(label, 0) + 1
            w.confidences[histogram([confidence]).index(1)] += 1
            w.confidence_sum += confidence
            w.low_confidence += confidence < self.low_confidence
            w.length_sum += length
            w.length_max = max(w.length_max, length)
            w.unknown_sum += unknown_share

    def record_error(self) -> None:
        with self._lock:
            self._w.errors += 1

    def snapshot(self, reset: bool = True) -> dict[str, Any]:
        """Summarise the current window; start a new one when ``reset``."""
        with self._lock:
            w = self._w
            if reset:
                self._w = _Window(labels={label: 0 for label in self._labels})
        end = time.time()
        lat = sorted(w.latencies)
        n = w.count
        return {
            "window_start": w.start, "window_end": end, "count": n, "errors": w.errors,
            "latency_ms": {"p50": _ms(percentile(lat, 0.5)), "p95": _ms(percentile(lat, 0.95)),
                           "p99": _ms(percentile(lat, 0.99))},
            "throughput_per_s": round(n / max(end - w.start, 1e-9), 3),
            "labels": dict(w.labels),
            "confidence": {"mean": round(w.confidence_sum / n, 4) if n else None,
                           "edges": [round(e, 2) for e in CONFIDENCE_EDGES],
                           "histogram": list(w.confidences),
                           "low_share": round(w.low_confidence / n, 4) if n else None},
            "text_tokens": {"mean": round(w.length_sum / n, 2) if n else None, "max": w.length_max},
            "unknown_token_rate": round(w.unknown_sum / n, 5) if n else None,
            "drift": self._drift(w),
        }

    def _drift(self, w: _Window) -> dict[str, float | None]:
        ref = self.reference
        n = w.count
        if not n or not ref:
            return {"class_psi": None, "confidence_psi": None}
        class_ref = ref.get("class_mix", {})
        class_psi = psi([float(class_ref.get(lab, 0.0)) for lab in self._labels],
                        [w.labels.get(lab, 0) / n for lab in self._labels]) if class_ref else None
        conf_ref = ref.get("confidence_hist")
        conf_psi = psi([float(x) for x in conf_ref], [c / n for c in w.confidences]) \
            if isinstance(conf_ref, list) and len(conf_ref) == len(w.confidences) else None
        return {"class_psi": None if class_psi is None else round(class_psi, 4),
                "confidence_psi": None if conf_psi is None else round(conf_psi, 4)}
