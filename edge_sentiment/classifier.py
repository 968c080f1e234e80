"""The one public class: :class:`SentimentClassifier`, with ``load()``, ``classify()`` and
``feedback()``.

A classifier holds an immutable engine (bundle, tokenizer, backend). ``swap``
replaces it atomically, so a running process can take a new model with no
failed request: a call in flight finishes on the engine it started with.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np

from . import backends
from .backends import RUNTIME_CHOICES
from .batching import length_chunks
from .bundle import Bundle, open_bundle
from .capture import Capture
from .errors import BackendError, ConfigError, EdgeSentimentError, InputError, SelfTestError
from .hardware import (
    Candidate,
    Plan,
    Profile,
    Request,
    detect,
    load_profiles,
    match_profile,
    select_plan,
)
from .hardware.detect import HardwareFacts
from .manifest import Calibration, Manifest
from .metrics import MetricsRecorder
from .outcomes import Outcome, OutcomeWindow
from .tokenize import Encoded, TextEncoder, check_text
from .workers import Workers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    scores: dict[str, float]
    id: str = ""  # give it to ``feedback`` with the true label, once known


@dataclass(frozen=True)
class ClassifierInfo:
    """What was chosen, and why every alternative was not."""

    backend: str
    provider: str
    threads: int
    precision: str
    artifact: str
    profile: str
    reason: str
    bundle: dict[str, Any]
    max_batch: int  # texts per model call: the profile's runtime.max_batch
    rejected: list[dict[str, Any]] = field(default_factory=list)
    load_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Engine:
    bundle: Bundle
    encoder: TextEncoder
    backend: backends.Backend
    info: ClassifierInfo
    workers: Workers = field(default_factory=lambda: Workers(1))


def _softmax_rows(logits: np.ndarray, calibration: Calibration | None = None
                  ) -> list[list[float]]:
    """Softmax of each row as plain floats (for the few rows of one call, Python's math costs
    less than numpy's per-operation overhead: tens of microseconds per text), then the
    calibration's confidence map, if any."""
    confidence = calibration.confidence if calibration is not None else ()
    out = []
    for row in logits.tolist():
        top = max(row)
        exps = [math.exp(v - top) for v in row]
        total = sum(exps)
        probs = [v / total for v in exps]
        out.append(_map_confidence(probs, confidence) if confidence else probs)
    return out


def _map_confidence(probs: list[float], confidence: tuple[float, ...]) -> list[float]:
    """The winner's probability p becomes sigmoid(slope * logit(p) + offset), held above its
    runner-up's (the label never changes); the others keep their ratios and the row its sum."""
    best = max(range(len(probs)), key=probs.__getitem__)
    p = probs[best]
    rest = 1.0 - p
    if rest <= 1e-12 or len(probs) < 2:
        return probs
    slope, offset = confidence
    z = slope * math.log(p / rest) + offset
    mapped = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
    second = max(v for i, v in enumerate(probs) if i != best)
    mapped = max(mapped, second / (rest + second) + 1e-7)  # a hair above: ties keep the winner
    scale = (1.0 - mapped) / rest
    return [mapped if i == best else v * scale for i, v in enumerate(probs)]


def _logits(encoder: TextEncoder, backend: backends.Backend, texts: list[str],
            calibration: Calibration | None) -> tuple[np.ndarray, Encoded]:
    return _logits_of_rows(encoder, backend, encoder.rows(texts), calibration)


def _logits_of_rows(encoder: TextEncoder, backend: backends.Backend, rows: list[list[int]],
                    calibration: Calibration | None, side: bool = False
                    ) -> tuple[np.ndarray, Encoded]:
    enc = encoder.pad(rows, pad_to=backend.fixed_length)
    run = backend.run_side_by_side if side else backend.run
    logits = run(enc.input_ids, enc.attention_mask)
    if calibration is not None:
        if calibration.bias:
            logits = logits + np.asarray(calibration.bias, dtype=logits.dtype)
        logits = logits / calibration.temperature
    return logits, enc


def predict_probs(encoder: TextEncoder, backend: backends.Backend, texts: list[str],
                  calibration: Calibration | None = None) -> tuple[np.ndarray, Encoded]:
    """Tokenize, run and softmax one batch: probabilities [batch, labels] and the encoding."""
    logits, enc = _logits(encoder, backend, texts, calibration)
    return np.asarray(_softmax_rows(logits, calibration), dtype=np.float32), enc


def _predict(encoder: TextEncoder, backend: backends.Backend, manifest: Manifest,
             texts: list[str]) -> tuple[list[Prediction], list[int], list[float]]:
    return _predict_rows(encoder, backend, manifest, encoder.rows(texts))


def _predict_rows(encoder: TextEncoder, backend: backends.Backend, manifest: Manifest,
                  rows: list[list[int]], side: bool = False
                  ) -> tuple[list[Prediction], list[int], list[float]]:
    labels = manifest.labels
    logits, enc = _logits_of_rows(encoder, backend, rows, manifest.calibration, side)
    preds = []
    for row in _softmax_rows(logits, manifest.calibration):
        best = max(range(len(row)), key=row.__getitem__)
        preds.append(Prediction(labels[best], row[best], dict(zip(labels, row))))
    return preds, enc.lengths, enc.unknown_share


def self_test(bundle: Bundle, encoder: TextEncoder, backend: backends.Backend) -> None:
    """Warm up, reproduce the golden examples one by one, then check the model's raw output on
    the goldens as one batch (shape, label width, finite, same answers); else SelfTestError."""
    manifest = bundle.manifest
    predict_probs(encoder, backend, ["warm up"])
    singles = []
    for gold in manifest.golden:  # one text per call, as the build scored them
        pred = _predict(encoder, backend, manifest, [gold.text])[0][0]
        if not all(math.isfinite(v) for v in pred.scores.values()):
            raise SelfTestError("model output holds NaN or infinite scores")
        singles.append(pred)
        drift = max(abs(pred.scores[k] - v) for k, v in gold.scores.items() if k in pred.scores)
        if pred.label != gold.label or drift > manifest.golden_tolerance:
            raise SelfTestError(
                f"golden self-test failed on {gold.text[:40]!r}: expected {gold.label} "
                f"got {pred.label} (max score error {drift:.3f}, tolerance "
                f"{manifest.golden_tolerance})")
    _check_batch(encoder, backend, manifest, singles)


def _check_batch(encoder: TextEncoder, backend: backends.Backend, manifest: Manifest,
                 singles: list[Prediction]) -> None:
    texts = [g.text for g in manifest.golden]
    logits, _ = _logits(encoder, backend, texts, manifest.calibration)
    want = (len(texts), len(manifest.labels))
    if np.shape(logits) != want:
        raise SelfTestError(f"model output has shape {np.shape(logits)} for "
                            f"{len(texts)} texts; the manifest's {len(manifest.labels)} labels "
                            f"need {want}")
    if not np.all(np.isfinite(logits)):
        raise SelfTestError("model output holds NaN or infinite scores")
    for single, row in zip(singles, _softmax_rows(logits, manifest.calibration)):
        drift = max(abs(single.scores[k] - v) for k, v in zip(manifest.labels, row))
        if drift > manifest.golden_tolerance:
            raise SelfTestError(f"batched and single scores differ by {drift:.3f} on "
                                f"{single.label} golden (tolerance {manifest.golden_tolerance})")


def _try_candidates(bundle: Bundle, encoder: TextEncoder, plan: Plan,
                    profile: Profile) -> tuple[backends.Backend, Candidate, list[dict[str, Any]]]:
    """Load candidates in plan order; a backend failure is recorded and the next one tried.

    A corrupt or unsafe artifact (a BundleError) refuses the whole bundle: a bundle
    that was tampered with is not trusted for its other files either.
    """
    rejected = [{"backend": r.backend, "provider": r.provider, "reason": r.reason}
                for r in plan.rejected]
    failures: list[BackendError] = []
    for cand in plan.candidates:
        opts = backends.BackendOptions(cand.provider, cand.threads, cand.artifact.fixed_length,
                                       cand.artifact.lengths)
        path = bundle.artifact_path(cand.artifact)
        try:
            backend = backends.backend_module(cand.backend).create(path, opts)
            self_test(bundle, encoder, backend)
        except BackendError as exc:
            failures.append(exc)
            log.warning("rejected %s/%s: %s", cand.backend, cand.provider, exc)
            rejected.append({"backend": cand.backend, "provider": cand.provider,
                             "artifact": cand.artifact.file, "reason": str(exc)})
            continue
        return backend, cand, rejected
    summary = "; ".join(f"{r['backend']}/{r['provider']}: {r['reason']}" for r in rejected)
    # every candidate that loaded failed its self-test: the model itself is wrong, not the runtime
    kind = SelfTestError if failures and all(isinstance(e, SelfTestError) for e in failures) \
        else BackendError
    raise kind(f"every candidate failed to load (profile {profile.name}): {summary}")


class SentimentClassifier:
    """Load a bundle onto the best backend here, then ``classify`` texts."""

    def __init__(self, engine: _Engine) -> None:
        self._engine = engine
        self._swap_lock = threading.Lock()
        m = engine.bundle.manifest
        self.metrics = MetricsRecorder(m.labels, m.reference)
        self.outcomes = OutcomeWindow(m.labels)
        self.capture: Capture | None = None  # opt-in sample capture (the agent sets it)

    @classmethod
    def load(cls, bundle: str | os.PathLike[str] | None = None, runtime: str = "auto",
             profile: str = "auto", threads: int | None = None, provider: str | None = None,
             sysroot: str | Path | None = None) -> SentimentClassifier:
        """Open ``bundle`` (None: the packaged default) and pick a backend.

        ``runtime`` and ``profile`` default to the env vars ``EDGE_SENTIMENT_RUNTIME``
        and ``EDGE_SENTIMENT_PROFILE`` when left at ``"auto"``.
        """
        return cls(build_engine(bundle, runtime, profile, threads, provider, sysroot))

    @property
    def info(self) -> ClassifierInfo:
        return self._engine.info

    @property
    def bundle(self) -> Bundle:
        return self._engine.bundle

    @property
    def labels(self) -> tuple[str, ...]:
        return self._engine.bundle.manifest.labels

    @property
    def encoder(self) -> TextEncoder:
        """The bundle's tokenizer, as the model reads text."""
        return self._engine.encoder

    @overload
    def classify(self, text: str) -> Prediction: ...
    @overload
    def classify(self, text: list[str]) -> list[Prediction]: ...

    def classify(self, text: str | list[str]) -> Prediction | list[Prediction]:
        """Classify one text, or a list of texts (padded to the longest in each batch)."""
        if isinstance(text, (list, tuple)):
            return self._classify_many(list(text))
        return self._classify_many([text])[0]

    def _classify_many(self, texts: list[Any]) -> list[Prediction]:
        try:
            clean = [check_text(t) for t in texts]
        except InputError:
            self.metrics.record_error()
            raise
        engine = self._engine  # one engine for the whole call, even across a swap
        t0 = time.perf_counter()
        rows = engine.encoder.rows(clean)
        tokenize_share = (time.perf_counter() - t0) / len(rows)
        out: list[Prediction | None] = [None] * len(rows)
        version = engine.bundle.manifest.version
        for chunk, (preds, lengths, unknown), seconds in self._run_chunks(engine, rows):
            per_text = seconds / len(chunk) + tokenize_share
            for i, p, n, u in zip(chunk, preds, lengths, unknown):
                self.metrics.record(per_text, p.label, p.score, n, u)
                pid = self.outcomes.issue(version, p.label)
                out[i] = Prediction(p.label, p.score, p.scores, pid)
                if self.capture is not None:
                    self.capture.seen(pid, clean[i], version, p.label, p.score, p.scores)
        return [p for p in out if p is not None]

    def _run_chunks(self, engine: _Engine, rows: list[list[int]]) -> Iterable[
            tuple[list[int], tuple[list[Prediction], list[int], list[float]], float]]:
        """Each length-sorted chunk's predictions and model seconds, chunks in order (run side
        by side when the backend allows it)."""
        manifest = engine.bundle.manifest
        chunks = length_chunks([len(r) for r in rows], engine.info.max_batch)
        side = engine.workers.side_by_side(len(chunks))

        def run(chunk: list[int]) -> tuple[list[int], Any, float]:
            t0 = time.perf_counter()
            got = _predict_rows(engine.encoder, engine.backend, manifest, [rows[i] for i in chunk],
                                side)
            return chunk, got, time.perf_counter() - t0

        try:
            yield from engine.workers.map(run, chunks)
        except EdgeSentimentError:
            self.metrics.record_error()
            raise

    def feedback(self, id: str, label: str) -> Outcome:
        """Record the true ``label`` of the prediction ``id`` (``Prediction.id``); it counts
        toward the online accuracy of the model version that made it (``outcome_stats``).
        A FeedbackError (an InputError) says why an id or label was refused."""
        outcome = self.outcomes.feedback(id, label)
        if self.capture is not None:
            self.capture.labelled(id, label)
        return outcome

    def outcome_stats(self) -> dict[str, Any]:
        """Online accuracy, macro-F1, per-class recall and confusion of the running model, over
        the last labelled outcomes (``outcomes.py``)."""
        return self.outcomes.stats(self._engine.bundle.manifest.version)

    def swap(self, other: SentimentClassifier) -> None:
        """Take ``other``'s loaded engine; callers in flight finish on the old one."""
        with self._swap_lock:
            old, self._engine = self._engine, other._engine
            m = other._engine.bundle.manifest
            self.metrics.reference = m.reference
        log.info("swapped model %s -> %s", old.bundle.manifest.version, m.version)


def build_engine(bundle: str | os.PathLike[str] | None, runtime: str, profile: str,
                 threads: int | None, provider: str | None, sysroot: str | Path | None) -> _Engine:
    t0 = time.perf_counter()
    runtime, profile = resolve_request(runtime, profile, threads)
    opened = open_bundle(bundle)
    try:
        encoder = TextEncoder(opened.tokenizer_path(), opened.manifest)
        facts = detect(sysroot)
        prof, plan = plan_for(facts, opened, runtime, profile, threads, provider)
        backend, cand, rejected = _try_candidates(opened, encoder, plan, prof)
    finally:
        opened.release()  # a .tar's temporary folder: the backend holds the model now
    info = ClassifierInfo(
        backend=cand.backend, provider=cand.provider, threads=cand.threads,
        precision=cand.artifact.precision, artifact=cand.artifact.file, profile=prof.name,
        reason=cand.reason, bundle=opened.summary(), rejected=rejected,
        load_seconds=round(time.perf_counter() - t0, 4), max_batch=prof.max_batch)
    log.info("loaded %s on %s/%s: %s", opened.manifest.version, cand.backend, cand.provider,
             cand.reason)
    return _Engine(opened, encoder, backend, info, Workers(backend.workers))



def resolve_request(runtime: str, profile: str, threads: int | None) -> tuple[str, str]:
    """The runtime and profile after the environment overrides (``EDGE_SENTIMENT_RUNTIME``,
    ``EDGE_SENTIMENT_PROFILE``, used where the argument is ``"auto"``), checked: a bad value
    is a ConfigError naming where it came from."""
    env_runtime = os.environ.get("EDGE_SENTIMENT_RUNTIME", "")
    if runtime == "auto" and env_runtime:
        if env_runtime not in RUNTIME_CHOICES:
            raise ConfigError(f"EDGE_SENTIMENT_RUNTIME={env_runtime!r} is not one of "
                              f"{', '.join(RUNTIME_CHOICES)}")
        runtime = env_runtime
    if runtime not in RUNTIME_CHOICES:
        raise ConfigError(f"runtime {runtime!r} is not one of {', '.join(RUNTIME_CHOICES)}")
    env_profile = os.environ.get("EDGE_SENTIMENT_PROFILE", "")
    if profile == "auto" and env_profile:
        profile = env_profile
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ConfigError(f"threads must be a whole number >= 1, got {threads!r}")
    return runtime, profile


def plan_for(facts: HardwareFacts, bundle: Bundle, runtime: str, profile: str,
             threads: int | None, provider: str | None) -> tuple[Profile, Plan]:
    """Match the profile and compute the plan for ``bundle`` on this machine."""
    prof = match_profile(facts, load_profiles(), profile)
    available = backends.probe()
    plan = select_plan(facts, available.runtimes, available.providers, prof,
                       Request(runtime=runtime, provider=provider, threads=threads),
                       bundle.manifest.artifacts)
    return prof, plan
