"""The behavioural suite: CheckList-style tests (Ribeiro et al. 2020) anyone can run on any
bundle, ``edge-sentiment check`` or :func:`run_suite`.

Every text is classified once (in batches); each test then reads the predictions it needs.
The cases come from this package's own templates and word lists (``suite.py``,
``lexicon.py``) with a fixed seed, so two runs on one bundle give the same table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..classifier import Prediction
from . import lexicon
from .suite import INV, MFT, Case, Test, build_tests

__all__ = ["SuiteResult", "TestResult", "build_tests", "format_table", "run_suite"]
EXAMPLES = 3


class _Classifier(Protocol):
    def classify(self, text: list[str]) -> list[Prediction]: ...


class _Encodes(Protocol):
    def unknown_emoji(self, emoji: list[str]) -> list[str]: ...


@dataclass(frozen=True)
class TestResult:
    name: str
    capability: str
    kind: str
    description: str
    n: int
    failures: int
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failure_rate(self) -> float:
        return self.failures / self.n if self.n else 0.0


@dataclass(frozen=True)
class SuiteResult:
    tests: list[TestResult]
    seed: int

    def by_name(self) -> dict[str, TestResult]:
        return {t.name: t for t in self.tests}

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed,
                "tests": [{**asdict(t), "failure_rate": round(t.failure_rate, 4)}
                          for t in self.tests]}


def _texts(case: Case) -> tuple[str, ...]:
    if isinstance(case, MFT):
        return (case.text,)
    if isinstance(case, INV):
        return case.texts
    return (case.a, case.b)


def _failure(case: Case, preds: dict[str, Prediction]) -> dict[str, Any] | None:
    """The failing case as a small dict, or None when the case passes."""
    if isinstance(case, MFT):
        p = preds[case.text]
        if p.label in case.allowed:
            return None
        return {"text": case.text, "got": p.label, "score": round(p.score, 3),
                "expected": sorted(case.allowed)}
    if isinstance(case, INV):
        labels = [preds[t].label for t in case.texts]
        if len(set(labels)) == 1:
            return None
        return {"texts": list(case.texts), "got": labels}
    a, b = preds[case.a].scores[case.label], preds[case.b].scores[case.label]
    if b - a >= case.min_delta:
        return None
    return {"a": case.a, "b": case.b, "label": case.label, "p_a": round(a, 3),
            "p_b": round(b, 3)}


def _score(test: Test, preds: dict[str, Prediction]) -> TestResult:
    fails = [f for f in (_failure(c, preds) for c in test.cases) if f is not None]
    return TestResult(test.name, test.capability, test.kind, test.description, len(test.cases),
                      len(fails), fails[:EXAMPLES])


def _emoji_known(encoder: _Encodes | None) -> list[TestResult]:
    if encoder is None:
        return []
    unknown = encoder.unknown_emoji(list(lexicon.COMMON_EMOJI))
    return [TestResult("emoji_known", "emoji", "MFT",
                       "each of the 200 most common emoji maps to a known token",
                       len(lexicon.COMMON_EMOJI), len(unknown),
                       [{"text": e, "got": "[UNK]"} for e in unknown[:EXAMPLES]])]


def run_suite(clf: _Classifier, seed: int = 0, batch: int = 32,
              encoder: _Encodes | None = None) -> SuiteResult:
    """Run every test on ``clf``; ``encoder`` (default: ``clf.encoder`` when it has one) adds
    the check that no common emoji is an unknown token."""
    tests = build_tests(seed)
    unique = list(dict.fromkeys(t for test in tests for c in test.cases for t in _texts(c)))
    preds: dict[str, Prediction] = {}
    for start in range(0, len(unique), batch):
        chunk = unique[start:start + batch]
        preds.update(zip(chunk, clf.classify(chunk)))
    enc = encoder if encoder is not None else getattr(clf, "encoder", None)
    return SuiteResult([_score(t, preds) for t in tests] + _emoji_known(enc), seed)


def format_table(result: SuiteResult, examples: bool = True) -> str:
    """The table ``edge-sentiment check`` prints: each test's failure rate, and a few failing
    cases under it."""
    lines = [f"{'test':<24} {'capability':<11} {'type':<4} {'cases':>5} {'failed':>7}"]
    for t in result.tests:
        lines.append(f"{t.name:<24} {t.capability:<11} {t.kind:<4} {t.n:>5} "
                     f"{100 * t.failure_rate:>6.1f}%")
        if examples:
            lines += [f"    e.g. {_example(e)}" for e in t.examples]
    return "\n".join(lines)


def _example(e: dict[str, Any]) -> str:
    if "text" in e:
        return f"{e['text']!r} -> {e['got']}"
    if "texts" in e:
        return " | ".join(f"{t!r}: {g}" for t, g in zip(e["texts"], e["got"]))[:200]
    return f"{e['a']!r} P({e['label']})={e['p_a']} -> {e['b']!r} {e['p_b']}"
