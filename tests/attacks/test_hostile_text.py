"""Attack family: texts built to break a tokenizer or a model call. Each gives a prediction
or our InputError, never another exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_sentiment import InputError, SentimentClassifier

TINY = Path(__file__).parents[1] / "fixtures" / "tiny_bundle"
TEXTS = {
    "rtl_override": "\u202egood product\u202c really",
    "zero_width_run": "good" + "\u200b" * 100_000,
    "combining_marks": "a" + "\u0301" * 200_000,
    "nul_bytes": "great\x00\x00 value\x00",
    "emoji_flood": "😡" * 100_000,
    "control_chars": "".join(chr(c) for c in range(1, 32)) + " fine",
    "mixed_scripts": "Отличный 商品 ممتاز बढ़िया",
    "one_long_line": "word " * 200_000,
    "private_use": "\ue000\uf8ff good",
}


@pytest.fixture(scope="module")
def clf() -> SentimentClassifier:
    return SentimentClassifier.load(TINY, runtime="onnx")


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_hostile_text_gets_a_prediction(clf: SentimentClassifier, name: str) -> None:
    pred = clf.classify(TEXTS[name])
    assert pred.label in clf.labels and abs(sum(pred.scores.values()) - 1) < 1e-4


@pytest.mark.parametrize("bad", ["\ud800 lone surrogate", b"\xff\xfe broken", " \t\n ", 12.5,
                                 "\u200b\u200b\u200b", "\ufeff \u2060\x00\u200d"])
def test_unusable_text_is_our_input_error(clf: SentimentClassifier, bad: object) -> None:
    """Text with nothing visible (zero-width spaces are not whitespace to str.strip) is refused
    like empty text, not classified as no words."""
    with pytest.raises(InputError):
        clf.classify(bad)  # type: ignore[arg-type]


def test_hostile_texts_in_one_batch_keep_their_order(clf: SentimentClassifier) -> None:
    texts = list(TEXTS.values())
    alone = [clf.classify(t).label for t in texts]
    assert [p.label for p in clf.classify(texts)] == alone
