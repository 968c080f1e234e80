"""The release gate: is a retrained candidate better than the release it would replace?

Both bundles are scored on the same texts: the frozen dev splits of the shared data (every
3-class source's ``dev.tsv``), the fleet data's held-out split (``<fleet>/test.tsv``, which no
build trains or chooses on) and the behavioural suite. The candidate passes only when it is

- no worse than the current release on each frozen split beyond ``frozen_tolerance`` macro-F1
  points,
- better on the fleet split by more than ``min_fleet_gain`` points,
- no worse on any behavioural test beyond ``suite_tolerance`` failure-rate points.

``decide`` is pure (scores in, verdict out); ``measure`` does the I/O.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_sentiment.errors import InputError


@dataclass(frozen=True)
class GateRules:
    frozen_tolerance: float = 1.0
    min_fleet_gain: float = 0.0
    suite_tolerance: float = 2.0


@dataclass(frozen=True)
class Scores:
    """Macro-F1 (points) per frozen split, on the fleet split, failure rate (points) per test."""

    frozen: dict[str, float]
    fleet: float
    suite: dict[str, float]


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def decide(current: Scores, candidate: Scores, rules: GateRules = GateRules()) -> Verdict:
    rows, reasons = [], []

    def row(kind: str, name: str, cur: float, cand: float, ok: bool, rule: str) -> None:
        rows.append({"kind": kind, "name": name, "current": round(cur, 2),
                     "candidate": round(cand, 2), "ok": ok, "rule": rule})
        if not ok:
            reasons.append(f"{kind} {name}: {cand:.2f} against {cur:.2f} ({rule})")

    missing = sorted(set(current.frozen) ^ set(candidate.frozen))
    if missing:
        raise InputError(f"the two bundles were not scored on the same splits: {missing}")
    for split in sorted(current.frozen):
        cur, cand = current.frozen[split], candidate.frozen[split]
        row("frozen", split, cur, cand, cand >= cur - rules.frozen_tolerance,
            f"macro-F1 at most {rules.frozen_tolerance} below")
    row("fleet", "held-out", current.fleet, candidate.fleet,
        candidate.fleet > current.fleet + rules.min_fleet_gain,
        f"macro-F1 more than {rules.min_fleet_gain} above")
    for test in sorted(set(current.suite) & set(candidate.suite)):
        cur, cand = current.suite[test], candidate.suite[test]
        row("suite", test, cur, cand, cand <= cur + rules.suite_tolerance,
            f"failure rate at most {rules.suite_tolerance} above")
    return Verdict(not reasons, reasons, rows)


def measure(bundle: Path, frozen: dict[str, Path], fleet: Path, seed: int = 13,
            runtime: str = "onnx") -> Scores:
    """Score ``bundle`` on the frozen splits, the fleet split and the suite (seeded)."""
    from edge_sentiment import SentimentClassifier
    from edge_sentiment.check import run_suite
    from edge_sentiment.evaluate import evaluate, read_labeled_tsv

    clf = SentimentClassifier.load(bundle, runtime=runtime)

    def f1(path: Path) -> float:
        texts, gold = read_labeled_tsv(path)
        return 100.0 * float(evaluate(clf, texts, gold)[0]["macro_f1"])

    suite = run_suite(clf, seed=seed)
    return Scores({name: f1(path) for name, path in frozen.items()}, f1(fleet),
                  {t.name: 100.0 * t.failure_rate for t in suite.tests})


def frozen_splits(data: Path, binary: tuple[str, ...] = ("sst2",),
                  leave_out: tuple[str, ...] = ()) -> dict[str, Path]:
    """Every 3-class source's dev split under ``data`` (``leave_out``: the fleet's own)."""
    out = {f"{p.parent.name}/dev": p for p in sorted(data.glob("*/dev.tsv"))
           if p.parent.name not in (*binary, *leave_out)}
    if not out:
        raise InputError(f"{data}: no <source>/dev.tsv to gate on")
    return out


def card_section(verdict: Verdict, current: str, candidate: str) -> str:
    lines = ["## Gate", "",
             f"Candidate {candidate} against the current release {current}: "
             f"**{'passed' if verdict.passed else 'failed'}**"
             + ("." if verdict.passed else f" ({'; '.join(verdict.reasons)})."), "",
             "| check | split or test | current | candidate | rule | ok |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['kind']} | {r['name']} | {r['current']:.2f} | {r['candidate']:.2f} | "
              f"{r['rule']} | {'yes' if r['ok'] else '**no**'} |" for r in verdict.rows]
    return "\n".join(lines) + "\n"


def write_card(card: Path, section: str) -> None:
    """Put ``section`` in ``card``, replacing an earlier gate section."""
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    text = re.sub(r"\n## Gate\n.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip("\n")
    card.write_text(text + "\n\n" + section, encoding="utf-8")
