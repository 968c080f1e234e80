"""The release gate: the pure decision, the card section, and the CLI on real bundles."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sentiment.errors import InputError
from edge_sentiment_convert.gate import GateRules, Scores, card_section, decide, write_card

ROOT = Path(__file__).parents[2]
TINY = ROOT / "tests/fixtures/tiny_bundle"
DATA = ROOT / "tests/fixtures/data"
CURRENT = Scores({"a/dev": 70.0, "b/dev": 60.0}, 50.0, {"negation": 20.0, "typos": 10.0})


def test_a_better_candidate_passes() -> None:
    better = Scores({"a/dev": 69.5, "b/dev": 61.0}, 55.0, {"negation": 21.0, "typos": 5.0})
    verdict = decide(CURRENT, better)
    assert verdict.passed and verdict.reasons == [] and len(verdict.rows) == 5


@pytest.mark.parametrize("candidate, reason", [
    (Scores({"a/dev": 68.0, "b/dev": 60.0}, 55.0, {"negation": 20.0, "typos": 10.0}),
     "frozen a/dev: 68.00 against 70.00"),
    (Scores({"a/dev": 70.0, "b/dev": 60.0}, 50.0, {"negation": 20.0, "typos": 10.0}),
     "fleet held-out: 50.00 against 50.00"),
    (Scores({"a/dev": 70.0, "b/dev": 60.0}, 55.0, {"negation": 25.0, "typos": 10.0}),
     "suite negation: 25.00 against 20.00"),
])
def test_each_rule_fails_for_its_stated_reason(candidate: Scores, reason: str) -> None:
    verdict = decide(CURRENT, candidate)
    assert not verdict.passed and len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith(reason)


def test_rules_and_mismatched_splits() -> None:
    worse = Scores({"a/dev": 68.0, "b/dev": 60.0}, 55.0, CURRENT.suite)
    assert decide(CURRENT, worse, GateRules(frozen_tolerance=2.5)).passed
    with pytest.raises(InputError, match="same splits"):
        decide(CURRENT, Scores({"a/dev": 70.0}, 55.0, {}))


def test_the_card_section_replaces_an_earlier_one(tmp_path: Path) -> None:
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# model\n\n## Scores\n\nfigures\n")
    write_card(card, card_section(decide(CURRENT, CURRENT), "1.0.0", "1.1.0"))
    write_card(card, card_section(decide(CURRENT, CURRENT), "1.0.0", "1.2.0"))
    text = card.read_text()
    assert text.count("## Gate") == 1 and "1.2.0" in text and "## Scores\n\nfigures" in text
    assert "**failed** (fleet held-out" in text


def _gate(current: Path, candidate: Path, fleet: Path, *extra: str
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_sentiment_convert", "gate", "--current",
                           str(current), "--candidate", str(candidate), "--data", str(DATA),
                           "--fleet", str(fleet), "--json", *extra], capture_output=True,
                          text=True, check=False, cwd=ROOT)


def _fleet_and_candidate(tmp_path: Path) -> tuple[Path, Path]:
    """A fleet held-out folder and a candidate that is a copy of the tiny bundle."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    shutil.copy(DATA / "reviews/test.tsv", fleet / "test.tsv")
    same = tmp_path / "same"
    shutil.copytree(TINY, same)
    return fleet, same


def test_the_cli_gates_real_bundles(tmp_path: Path) -> None:
    fleet, same = _fleet_and_candidate(tmp_path)
    done = _gate(TINY, same, fleet)  # no better on the fleet's texts: refused, exit 1
    verdict = json.loads(done.stdout)
    assert done.returncode == 1 and not verdict["passed"], done.stderr
    assert any(r.startswith("fleet held-out") for r in verdict["reasons"])
    assert "## Gate" in (same / "MODEL_CARD.md").read_text()
    missing = _gate(TINY, same, tmp_path / "nope")
    assert missing.returncode == 2 and "held-out split is missing" in missing.stderr


def test_a_publish_url_with_credentials_is_refused_before_the_gate(tmp_path: Path) -> None:
    fleet, same = _fleet_and_candidate(tmp_path)
    done = _gate(TINY, same, fleet, "--sign-key", str(tmp_path / "k.pem"), "--release-version",
                 "9.9.9", "--release-out", str(tmp_path / "rel"),
                 "--publish", "mqtt://alice:hunter2@127.0.0.1:1")
    assert done.returncode == 2, done.stderr
    assert "credentials in the broker URL are refused" in done.stderr
    assert "hunter2" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "## Gate" not in (same / "MODEL_CARD.md").read_text()  # refused before the gate ran
