"""Emoji and identity terms in the tokenizers and the transfer set."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_sentiment.errors import ConfigError
from edge_sentiment_convert.compose import negated_copies, negation_rule
from edge_sentiment_convert.config import DistillCfg
from edge_sentiment_convert.data import Example
from edge_sentiment_convert.emoji_tokens import char_class, emoji_names, emoji_texts, write_teacher_tokenizer
from edge_sentiment_convert.identity import (
    BLIND_TOKEN,
    alternation,
    blind_words,
    counterfactuals,
    kept_words,
    swap_identity,
)
from edge_sentiment_convert.teacher import load_tokenizer
from edge_sentiment_convert.transfer import distill_rows
from edge_sentiment_convert.vocab import prune_vocab, write_anchored

FIX = Path(__file__).parents[1] / "fixtures"
TOKENIZER = FIX / "tiny_bundle" / "tokenizer.json"
SMOKE = Path(__file__).parents[2] / "convert" / "configs" / "smoke.toml"


def test_emoji_names_cover_common_faces() -> None:
    names = emoji_names()
    assert names["😍"] == "smiling face with heart-eyes"
    assert names["❤"] == "red heart"
    assert "🏽" not in names and all(ord(c) >= 0x80 for c in names)


def test_student_vocabulary_gets_one_token_per_emoji(tmp_path: Path) -> None:
    out = tmp_path / "tok.json"
    texts = ["the flight was fine", "a muslim friend"]
    teacher_vocab = json.loads(TOKENIZER.read_text())["model"]["vocab"]
    rare = sorted(w for w in teacher_vocab if w.isalpha() and len(w) > 4)[-1]
    rows = prune_vocab(TOKENIZER, texts, 1, 50, out, keep_words=[rare], emoji=emoji_names())
    tok = load_tokenizer(out, 64)
    def pieces(text: str) -> list[str]:
        return list(tok.encode(text, add_special_tokens=False).tokens)
    assert pieces("flight 😍")[-1] == "😍"
    assert pieces("x😡😡")[-2:] == ["😡", "😡"]  # isolated even inside a word
    assert pieces("👍🏽") == pieces("👍") == ["👍"]  # skin tone removed
    assert tok.get_vocab_size() == len(rows)
    assert isinstance(rows[-1], list) and rows[-1]  # a new row averages its name's pieces
    vocab = json.loads(out.read_text())["model"]["vocab"]
    assert rare in vocab
    assert rare not in json.loads(
        (prune_vocab(TOKENIZER, texts, 1, 50, tmp_path / "plain.json"), (tmp_path / "plain.json")
         )[1].read_text())["model"]["vocab"]


def test_teacher_tokenizer_spells_emoji_out(tmp_path: Path) -> None:
    path = write_teacher_tokenizer(TOKENIZER, tmp_path / "t.json")
    toks = load_tokenizer(path, 64).encode("ok 😡").tokens
    assert "[UNK]" not in toks and len(toks) > 4


def test_char_class_merges_ranges() -> None:
    assert char_class(["a", "b", "c", "x"]) == "[\\x{61}-\\x{63}\\x{78}]"


def test_emoji_texts_are_seeded_and_carry_an_emoji() -> None:
    texts = ["the battery died", "works great"]
    a, b = emoji_texts(texts, 20, 1), emoji_texts(texts, 20, 1)
    assert a == b and len(a) == 20
    names = emoji_names()
    assert all(any(c in names for c in t) for t in a)


@pytest.mark.parametrize(("text", "group"), [("My Muslim neighbour", "religion"),
                                             ("GAY pride", "sexuality")])
def test_identity_swap_keeps_case_and_group(text: str, group: str) -> None:
    from edge_sentiment_convert.identity import GROUPS
    out = swap_identity(text, random.Random(0))
    assert out is not None and out != text
    word = out.split()[1] if group == "religion" else out.split()[0]
    assert word.lower() in GROUPS[group]
    assert word[0].isupper()


def test_identity_swap_ignores_texts_without_terms() -> None:
    assert swap_identity("the straight road was fine", random.Random(0)) is None
    assert counterfactuals(["no terms here", "a hindu temple"], 1) == \
        counterfactuals(["no terms here", "a hindu temple"], 1)
    assert [i for i, _ in counterfactuals(["no terms here", "a hindu temple"], 1, 2)] == [1, 1]
    assert "muslim" in kept_words()


def test_distill_rows_lay_out_augment_emoji_and_counterfactuals() -> None:
    transfer = [Example("a hindu man said it was great", "positive", "s"),
                Example("it broke", "negative", "s"), Example("meh", "", "unlabeled")]
    logits = np.arange(3 * (3 * 2 + 4), dtype=np.float32).reshape(-1, 3)  # T=3, augment 1
    d = DistillCfg(augment=1, emoji_copies=4, counterfactual=1)
    rows = distill_rows(transfer, set(), d, 1, 7, logits, None)
    assert len(rows.texts) == 3 + 3 + 4 + 1
    assert rows.hard[:3] == [2, 0, -1] and rows.hard[-1] == 2
    np.testing.assert_array_equal(rows.logits[6:10], logits[6:10])  # emoji copies' own labels
    np.testing.assert_array_equal(rows.logits[-1], logits[0])  # the original's soft label
    with pytest.raises(Exception, match="soft labels cover"):
        distill_rows(transfer, set(), DistillCfg(augment=1, emoji_copies=9), 1, 7, logits, None)


def test_blinding_reads_every_identity_word_as_one_token(tmp_path: Path) -> None:
    out = tmp_path / "tok.json"
    rows = prune_vocab(TOKENIZER, ["a friend"], 1, 50, out, emoji=emoji_names(), blind=True)
    tok = load_tokenizer(out, 64)

    def pieces(text: str) -> list[str]:
        return list(tok.encode(text, add_special_tokens=False).tokens)

    same = ["a Muslim friend", "a Hindu friend", "an Asian friend", "a Black friend",
            "A GAY FRIEND", "a Nigerian friend", "a woman friend", "an African American friend",
            "a Native-American friend"]
    assert all(pieces(text) == pieces(same[0]) for text in same), [pieces(t) for t in same]
    assert pieces("Muslims")[0] == BLIND_TOKEN
    assert BLIND_TOKEN not in pieces("nail polished at the sierra mansion")  # whole words only
    assert pieces("an apple")[0] == "a"
    assert tok.get_vocab_size() == len(rows) and isinstance(rows[-1], list) and rows[-1]


def test_blinding_leaves_the_excepted_words_as_they_are(tmp_path: Path) -> None:
    out = tmp_path / "tok.json"
    prune_vocab(TOKENIZER, ["a man and two guys"], 1, 50, out, blind=True,
                blind_except=["man", "guy"])
    tok = load_tokenizer(out, 64)

    def pieces(text: str) -> list[str]:
        return list(tok.encode(text, add_special_tokens=False).tokens)

    assert BLIND_TOKEN not in pieces("a man and two guys"), pieces("a man and two guys")
    assert pieces("a Muslim man")[1] == BLIND_TOKEN and pieces("a woman")[1] == BLIND_TOKEN


def test_anchor_blinds_identity_words_after_training(tmp_path: Path) -> None:
    """``identity_anchor``: the trained vocabulary is unchanged and every identity word reads as
    the anchor word, so the bundle's student sees "a other seat" for each of them."""
    trained = tmp_path / "tok.json"
    prune_vocab(TOKENIZER, ["an other seat and a black book"], 1, 2000, trained,
                emoji=emoji_names())
    anchored = write_anchored(trained, tmp_path / "anchored.json", "other")
    before, after = load_tokenizer(trained, 64), load_tokenizer(anchored, 64)

    def pieces(tok: Any, text: str) -> list[str]:
        return list(tok.encode(text, add_special_tokens=False).tokens)

    assert before.get_vocab() == after.get_vocab()
    same = ["a Muslim seat", "an Asian seat", "a Black seat", "A GAY SEAT",
            "an African American seat", "a woman seat", "an other seat"]
    assert all(pieces(after, t) == ["a", "other", "seat"] for t in same), \
        [pieces(after, t) for t in same]
    assert "other" not in pieces(before, "a black book")  # as the student learnt it
    assert pieces(after, "a blackboard") == pieces(before, "a blackboard")  # whole words only
    with pytest.raises(ConfigError, match="'zebra' is not a word of the student's vocabulary"):
        write_anchored(trained, tmp_path / "other.json", "zebra")


def test_blinding_regex_is_a_trie_that_matches_exactly_the_word_list() -> None:
    """The blinding pattern is one trie-shaped alternation (an Oniguruma regex over some 400
    words was 58 us per text as a flat list); it must match what the flat list of words,
    longest first, matches: every word, its plurals, two-word names with spaces or hyphens,
    and never part of a longer word."""
    import re

    words = blind_words()
    flat = "|".join(re.escape(w).replace("\\ ", "[\\s-]+") for w in words)
    tail = r"(?:e?s)?\b"
    trie, plain = re.compile(rf"\b(?:{alternation(words)}){tail}"), re.compile(rf"\b(?:{flat}){tail}")
    texts = [f"the {w} and {w}s, {w}es or {w}ish; x{w} {w.replace(' ', '-')}" for w in words]
    texts += [line.lower() for line in (FIX / "data" / "reviews" / "train.tsv").read_text().splitlines()]
    for text in texts:
        assert trie.sub("#", text) == plain.sub("#", text), text
    assert alternation(["g", "gay", "gays x", "ab"]) == r"(?:ab|g(?:ay(?:s[\s-]+x)?)?)"


def test_build_reads_the_anchored_tokenizer_only_when_asked(tmp_path: Path) -> None:
    from edge_sentiment_convert.build import Build
    from edge_sentiment_convert.config import load_config

    cfg = load_config(SMOKE)
    cfg = replace(cfg, vocab=replace(cfg.vocab, blind_identity=False, blind_except=[]))
    build = Build(cfg, SMOKE, FIX / "data", tmp_path)
    build.layout.vocab.mkdir(parents=True)
    prune_vocab(TOKENIZER, ["an other seat"], 1, 2000, build.layout.vocab_tokenizer)
    assert build.final_tokenizer == build.layout.vocab_tokenizer
    anchored = Build(replace(cfg, identity_anchor="other"), SMOKE, FIX / "data", tmp_path)
    path = anchored.final_tokenizer
    assert path != anchored.layout.vocab_tokenizer
    tok = load_tokenizer(path, 64)
    assert tok.encode("a gay seat", add_special_tokens=False).tokens == ["a", "other", "seat"]


def test_negated_copies_say_whether_a_negation_was_added() -> None:
    texts = ["It was great", "It isn't bad", "I loved it", "nothing here"]
    copies = negated_copies(texts, 10, 3)
    assert sorted(copies) == [(0, "It was not great", True), (1, "It is bad", False),
                              (2, "I didn't love it", True)]


def test_negation_rule_moves_only_added_negations_of_complaints() -> None:
    neg, pos = [3.0, 0.0, 0.0], [0.0, 0.0, 3.0]
    originals = np.array([neg, neg, pos, neg], dtype=np.float32)
    copies = np.array([neg, neg, neg, pos], dtype=np.float32)
    added = np.array([True, False, True, True])
    out = negation_rule(copies, originals, added, (0.2, 0.5, 0.3), 2.0)
    np.testing.assert_allclose(np.exp(out[0] / 2.0), [0.2, 0.5, 0.3], rtol=1e-5)
    np.testing.assert_array_equal(out[1:], copies[1:])  # removed, praised, or already fine


def test_distill_rows_put_the_negation_target_on_negated_complaints() -> None:
    transfer = [Example("the hotel was dirty", "negative", "s"),
                Example("the staff were lovely", "positive", "s")]
    logits = np.array([[4, 0, 0], [0, 0, 4], [4, 0, 0], [4, 0, 0]], dtype=np.float32)
    d = DistillCfg(negation_copies=2, negation_target=[0.1, 0.6, 0.3], temperature=1.0)
    rows = distill_rows(transfer, set(), d, 0, 5, logits, None)
    where = {text: i for i, text in enumerate(rows.texts)}
    np.testing.assert_allclose(np.exp(rows.logits[where["the hotel was not dirty"]]),
                               [0.1, 0.6, 0.3], rtol=1e-5)
    np.testing.assert_array_equal(rows.logits[where["the staff were not lovely"]], [4, 0, 0])
    plain = distill_rows(transfer, set(), DistillCfg(negation_copies=2), 0, 5, logits, None)
    np.testing.assert_array_equal(plain.logits[:4], logits)
