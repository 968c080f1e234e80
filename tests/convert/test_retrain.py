"""Closing the loop, smoke-sized: the fleet's exported samples as one more source (--data given
twice), a retrained candidate, and the gate against the current release, passing or failing
for its stated reason; a bar set out of reach makes it fail on purpose."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sentiment.fleet.samples import export
from edge_sentiment_convert.data import DataError, merge_roots, read_tsv

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests/fixtures/data"
TINY = ROOT / "tests/fixtures/tiny_bundle"


def _fleet(out: Path) -> Path:
    rows = [{"text": e.text, "label": e.label}
            for split in ("dev", "test") for e in read_tsv(DATA / "reviews" / f"{split}.tsv",
                                                          labeled=True, source="fleet")]
    rows += [{"text": "arrived on a tuesday in a box", "label": None}]
    export(rows, out)
    return out


def test_data_folders_merge_and_a_source_in_two_is_refused(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path / "fleet-data")
    merged = merge_roots([DATA, fleet], tmp_path / "merged")
    assert {p.name for p in merged.iterdir()} == {"reviews", "sst2", "fleet", "unlabeled"}
    texts = read_tsv(merged / "unlabeled" / "unlabeled.tsv", labeled=False, source="u")
    assert "arrived on a tuesday in a box" in {e.text for e in texts}
    assert len(texts) == len(read_tsv(DATA / "unlabeled/unlabeled.tsv", labeled=False,
                                      source="u")) + 1
    with pytest.raises(DataError, match="'reviews' is in more than one"):
        merge_roots([DATA, DATA], tmp_path / "twice")


def _gate(candidate: Path, fleet: Path, *extra: str) -> tuple[int, dict[str, object]]:
    done = subprocess.run([sys.executable, "-m", "edge_sentiment_convert", "gate", "--current",
                           str(TINY), "--candidate", str(candidate), "--data", str(DATA),
                           "--fleet", str(fleet / "fleet"), "--json", *extra],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.slow
def test_a_retrained_candidate_is_gated(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path / "fleet-data")
    out = tmp_path / "retrain"
    built = subprocess.run([sys.executable, "-m", "edge_sentiment_convert", "build", "--config",
                            "convert/configs/retrain-smoke.toml", "--data", str(DATA), "--data",
                            str(fleet), "--out", str(out)], cwd=ROOT, capture_output=True,
                           text=True, check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    candidate = out / "bundle"
    code, verdict = _gate(candidate, fleet)
    assert (code == 0) == verdict["passed"] and verdict["candidate"] == "0.0.2"
    kinds = {r["kind"] for r in verdict["rows"]}  # type: ignore[attr-defined]
    assert kinds == {"frozen", "fleet", "suite"}
    assert verdict["passed"] or verdict["reasons"]
    code, verdict = _gate(candidate, fleet, "--min-fleet-gain", "1000")
    assert code == 1 and any(str(r).startswith("fleet held-out")
                             for r in verdict["reasons"])  # type: ignore[attr-defined]
    assert "## Gate" in (candidate / "MODEL_CARD.md").read_text()
