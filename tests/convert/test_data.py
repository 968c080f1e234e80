"""Transfer-set weighting (convert/data.py): which rows a student trains on, and in what order."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from edge_sentiment.evaluate import read_labeled_tsv
from edge_sentiment_convert.data import read_tsv, weighted_rows

SOURCES = ["a", "b", "a", "u", "b", "a", "u", "u"]


def test_weights_repeat_sample_or_drop_each_source() -> None:
    rows = weighted_rows(SOURCES, {"a": 2.0, "u": 0.0, "b": 0.5}, seed=1)
    count = Counter(rows)
    assert all(count[i] == 2 for i in (0, 2, 5))  # "a" twice
    assert not {3, 6, 7} & set(rows)  # "u" dropped
    assert sum(count[i] for i in (1, 4)) == 1  # half of "b"'s two rows


def test_unnamed_sources_weigh_one_and_no_weights_keep_the_set() -> None:
    assert weighted_rows(SOURCES, {}, seed=1) == list(range(len(SOURCES)))
    assert sorted(weighted_rows(SOURCES, {"a": 1.0}, seed=3)) == list(range(len(SOURCES)))


def test_repeats_come_as_later_passes_and_the_sample_is_seeded() -> None:
    """A text's copy sits a whole pass later, so a length-sorted batching (stable sort) does
    not put it beside itself."""
    rows = weighted_rows(SOURCES, {"a": 2.0}, seed=1)
    assert rows == [0, 1, 2, 3, 4, 5, 6, 7, 0, 2, 5]
    many = ["s"] * 100
    assert weighted_rows(many, {"s": 0.3}, seed=7) == weighted_rows(many, {"s": 0.3}, seed=7)
    assert weighted_rows(many, {"s": 0.3}, seed=7) != weighted_rows(many, {"s": 0.3}, seed=8)
    assert len(weighted_rows(many, {"s": 1.3}, seed=7)) == 130


def test_a_crlf_split_reads_like_an_lf_one(tmp_path: Path) -> None:
    (tmp_path / "lf.tsv").write_bytes(b"text\tlabel\ngreat\tpositive\nbad\tnegative\n")
    (tmp_path / "crlf.tsv").write_bytes(b"text\tlabel\r\ngreat\tpositive\r\nbad\tnegative\r\n")
    lf = read_tsv(tmp_path / "lf.tsv", source="s")
    assert read_tsv(tmp_path / "crlf.tsv", source="s") == lf
    assert [e.label for e in lf] == ["positive", "negative"]
    # a carriage return inside a text is part of the text, not a line break
    (tmp_path / "cr.tsv").write_bytes(b"text\tlabel\r\ngreat\rreally\tpositive\r\n")
    assert [e.text for e in read_tsv(tmp_path / "cr.tsv")] == ["great\rreally"]
    texts, labels = read_labeled_tsv(tmp_path / "cr.tsv")
    assert (texts, labels) == (["great\rreally"], ["positive"])
