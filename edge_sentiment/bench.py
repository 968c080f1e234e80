"""Measure a classifier: load time, single-text latency, batch throughput, peak RSS."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Sequence
from typing import Any

from .classifier import SentimentClassifier
from .errors import InputError
from .metrics import percentile

SAMPLE_TEXTS = (
    "The battery died after two days.",
    "Absolutely love it, works exactly as described and arrived early.",
    "It's okay. Does the job but nothing special.",
    "Customer service never answered my emails, very disappointed.",
    "Great sound quality for the price, though the strap feels cheap.",
    "Stopped working after a week and the return process was a nightmare.",
    "Fits well, looks nice, would buy again.",
    "The flight was delayed three hours and nobody told us anything.",
)


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _pct(values: list[float], q: float) -> float:
    return float(percentile(sorted(values), q) or 0.0)


def run_bench(load_kwargs: dict[str, Any], n: int = 200, batch: int = 32,
              texts: Sequence[str] = SAMPLE_TEXTS) -> dict[str, Any]:
    """Load once (timed to the first prediction), then time ``n`` single texts and batches,
    cycling through ``texts`` (the built-in samples: short, 9-15 tokens)."""
    if not texts:
        raise InputError("bench needs at least one text")
    t0 = time.perf_counter()
    clf = SentimentClassifier.load(**load_kwargs)
    clf.classify(texts[0])
    load_s = time.perf_counter() - t0
    clf.metrics.snapshot(reset=True)
    singles = []
    for i in range(n):
        text = texts[i % len(texts)]
        s = time.perf_counter()
        clf.classify(text)
        singles.append((time.perf_counter() - s) * 1000)
    tokens = clf.metrics.snapshot(reset=True)["text_tokens"]["mean"]
    chunk = [texts[i % len(texts)] for i in range(batch)]
    rounds = max(3, n // batch)
    s = time.perf_counter()
    for _ in range(rounds):
        clf.classify(chunk)
    elapsed = time.perf_counter() - s
    info = clf.info
    return {
        "backend": info.backend, "provider": info.provider, "threads": info.threads,
        "precision": info.precision, "bundle_version": info.bundle["version"], "n": n,
        "load_and_first_s": round(load_s, 4), "texts": min(n, len(texts)), "mean_tokens": tokens,
        "latency_ms": {"p50": round(statistics.median(singles), 3),
                       "p95": round(_pct(singles, 0.95), 3), "p99": round(_pct(singles, 0.99), 3)},
        "batch": batch, "throughput_per_s": round(rounds * batch / elapsed, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
