from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from edge_sentiment.bundle import open_bundle
from edge_sentiment.errors import InputError
from edge_sentiment.tokenize import TextEncoder, check_text


@pytest.fixture
def encoder(tiny_bundle: Path) -> TextEncoder:
    b = open_bundle(tiny_bundle)
    return TextEncoder(b.tokenizer_path(), b.manifest)


def test_batch_pads_to_longest_not_max(encoder: TextEncoder) -> None:
    enc = encoder.encode(["short", "a somewhat longer text with several words"])
    assert enc.input_ids.shape[1] == max(enc.lengths) < encoder.max_length
    assert enc.attention_mask[0].sum() == enc.lengths[0]
    assert enc.input_ids[0, enc.lengths[0]:].tolist() == [0] * (enc.input_ids.shape[1] - enc.lengths[0])


def test_fixed_padding_for_tflite(encoder: TextEncoder) -> None:
    assert encoder.encode(["short"], pad_to=32).input_ids.shape == (1, 32)


def test_long_text_truncates_head(encoder: TextEncoder) -> None:
    enc = encoder.encode(["good " * 500 + "terrible"])
    assert enc.lengths == [encoder.max_length]
    assert enc.input_ids[0, -1] == 3  # [SEP] closes the window


def test_head_tail_keeps_the_end(tiny_bundle: Path) -> None:
    b = open_bundle(tiny_bundle)
    m = replace(b.manifest, truncation="head_tail", head_tokens=10)
    enc = TextEncoder(b.tokenizer_path(), m)
    head = TextEncoder(b.tokenizer_path(), b.manifest)
    text = "good " * 500 + "terrible awful"
    tail_ids = head.encode(["terrible awful"]).input_ids[0, 1:-1].tolist()
    ids = enc.encode([text]).input_ids[0].tolist()
    assert ids[-1 - len(tail_ids):-1] == tail_ids
    assert head.encode([text]).input_ids[0].tolist()[-1 - len(tail_ids):-1] != tail_ids


def test_megabyte_and_odd_characters(encoder: TextEncoder) -> None:
    texts = ["x" * 1_000_000, "I ❤️ this 😀", "很好的产品", "bell\x07tab\tnull\x00", "a" * 5000]
    enc = encoder.encode([check_text(t) for t in texts])
    assert all(1 < n <= encoder.max_length for n in enc.lengths)
    assert enc.unknown_share[2] >= 0.0


@pytest.mark.parametrize("bad, msg", [
    ("", "empty"), ("   \n", "empty"), (None, "None"), (42, "int"), (["x"], "list"),
    (b"\xff\xfe", "UTF-8"), ("\ud800", "surrogate"),
])
def test_bad_text_raises_input_error(bad: object, msg: str) -> None:
    with pytest.raises(InputError, match=msg):
        check_text(bad)


def test_utf8_bytes_are_accepted() -> None:
    assert check_text("héllo".encode()) == "héllo"


class _Counting:
    """The real tokenizer, recording how many characters each call hands it."""

    def __init__(self, tok: object) -> None:
        self.tok, self.chars = tok, 0

    def encode(self, text: str, **kw: object) -> object:
        self.chars = max(self.chars, len(text))
        return self.tok.encode(text, **kw)  # type: ignore[attr-defined]

    def encode_batch(self, texts: list[str], **kw: object) -> object:
        self.chars = max([self.chars, *map(len, texts)])
        return self.tok.encode_batch(texts, **kw)  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", ["a" * 2_000_000, "x" * 500_000 + " good " + "y" * 500_000,
                                  "好" * 3_000_000], ids=["one-word", "two-words", "cjk"])
def test_a_huge_text_is_cut_before_tokenizing(encoder: TextEncoder, text: str) -> None:
    counting = _Counting(encoder._tok)
    encoder._tok = counting  # type: ignore[assignment]
    row = encoder.rows([text])[0]
    assert 3 <= len(row) <= encoder.max_length
    # at most the widest cut (16 x max_length x 24 characters, head and tail), never the text
    assert counting.chars <= 2 * 16 * encoder.max_length * 24 + 1 < len(text)
