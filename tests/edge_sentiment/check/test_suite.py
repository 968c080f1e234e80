"""The behavioural suite: its generators, its scoring (on toy classifiers that pass and fail
on purpose), and a real run on the tiny fixture bundle through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edge_sentiment import SentimentClassifier
from edge_sentiment.check import format_table, run_suite
from edge_sentiment.check.suite import DIR, INV, MFT, build_tests
from edge_sentiment.classifier import Prediction

LABELS = ("negative", "neutral", "positive")
CAPABILITIES = {"vocabulary", "neutral", "intensity", "negation", "temporal", "questions",
                "robustness", "entities", "fairness", "emoji"}


class Toy:
    """A rule-based stand-in: ``rule(text) -> label``."""

    def __init__(self, rule: object) -> None:
        self.rule = rule

    def classify(self, text: list[str]) -> list[Prediction]:
        out = []
        for t in text:
            label = self.rule(t)  # type: ignore[operator]
            scores = {lab: (0.8 if lab == label else 0.1) for lab in LABELS}
            out.append(Prediction(label, 0.8, scores))
        return out


def test_generation_is_seeded_and_covers_every_capability() -> None:
    a, b, c = build_tests(0), build_tests(0), build_tests(1)
    assert [t.cases for t in a] == [t.cases for t in b]
    assert [t.cases for t in a] != [t.cases for t in c]
    assert {t.capability for t in a} >= CAPABILITIES
    assert {t.kind for t in a} == {"MFT", "INV", "DIR"}
    for t in a:
        assert len(t.cases) >= (40 if t.name == "emoji_alone" else 100), t.name
    names = {t.name for t in a}
    for needed in ("negated_positive", "negated_negative", "negated_neutral",
                   "negation_distance", "contrast", "questions_yes_no", "neutral_statements",
                   "typos", "punctuation", "contractions", "add_url", "add_handle", "names",
                   "locations", "numbers", "identity_race", "identity_religion",
                   "identity_nationality", "identity_sexuality", "identity_gender",
                   "intensifiers", "reducers", "emoji_direction"):
        assert needed in names


def test_case_texts_are_well_formed() -> None:
    for t in build_tests(0):
        for case in t.cases:
            texts = ((case.text,) if isinstance(case, MFT) else
                     case.texts if isinstance(case, INV) else (case.a, case.b))
            assert all(x.strip() and "{" not in x for x in texts), (t.name, case)
            if isinstance(case, INV):
                assert len(set(case.texts)) == len(case.texts) > 1
            if isinstance(case, DIR):
                assert case.a != case.b


def test_a_model_biased_against_one_religion_fails_the_identity_test() -> None:
    fair = run_suite(Toy(lambda t: "neutral")).by_name()
    biased = run_suite(Toy(lambda t: "negative" if "Muslim" in t else "neutral")).by_name()
    assert fair["identity_religion"].failures == 0
    assert biased["identity_religion"].failure_rate > 0.9
    assert biased["identity_race"].failures == 0  # only the religion test sees that word
    example = biased["identity_religion"].examples[0]
    assert "negative" in example["got"] and "neutral" in example["got"]


def test_negation_and_neutral_tests_fail_a_model_that_reads_words_alone() -> None:
    def lexical(t: str) -> str:
        low = t.lower()
        if any(w in low for w in ("terrible", "awful", "bad", "poor", "broken", "hate")):
            return "negative"
        return "positive"
    r = run_suite(Toy(lexical)).by_name()
    assert r["neutral_statements"].failure_rate == 1.0
    assert r["negated_negative"].failure_rate > 0.3
    assert r["negation_distance"].failure_rate > 0.2
    assert r["emoji_direction"].failure_rate == 1.0  # emoji never move its scores
    assert "emoji_known" not in r  # no encoder: the tokenizer check is left out


def test_tiny_bundle_run_and_cli_agree(tiny_bundle: Path) -> None:
    clf = SentimentClassifier.load(tiny_bundle, runtime="onnx")
    result = run_suite(clf)
    by = result.by_name()
    assert by["emoji_known"].n == 200  # the real bundle brings its tokenizer
    table = format_table(result)
    assert "identity_religion" in table and "%" in table
    done = subprocess.run([sys.executable, "-m", "edge_sentiment", "check", "--bundle",
                           str(tiny_bundle), "--runtime", "onnx", "--json"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    cli = {t["name"]: t["failure_rate"] for t in json.loads(done.stdout)["tests"]}
    assert cli == {t.name: round(t.failure_rate, 4) for t in result.tests}


def test_cli_check_refuses_a_negative_seed(tiny_bundle: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "edge_sentiment", "check", "--bundle",
                           str(tiny_bundle), "--seed", "-1"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2 and "--seed" in done.stderr
