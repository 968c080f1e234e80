"""Augmented transfer text: deterministic, prefix-consistent copies built from the corpus."""

from __future__ import annotations

import random

from edge_sentiment_convert.augment import augment_texts, misspell, typo_copies

TEXTS = [f"the screen {i} is bright but the battery dies after an hour of use" for i in range(200)]


def test_copies_are_deterministic_and_the_first_k_do_not_depend_on_how_many() -> None:
    three = augment_texts(TEXTS, 3, seed=13)
    assert len(three) == 3 * len(TEXTS)
    assert augment_texts(TEXTS, 1, seed=13) == three[: len(TEXTS)]
    assert augment_texts(TEXTS, 3, seed=13) == three
    assert augment_texts(TEXTS, 1, seed=14) != three[: len(TEXTS)]
    assert augment_texts(TEXTS, 0, seed=13) == []


def test_copies_perturb_with_corpus_words_and_never_come_out_empty() -> None:
    corpus = {w for t in TEXTS for w in t.split()}
    out = augment_texts([*TEXTS, "ok"], 2, seed=13)
    assert all(text.strip() for text in out)
    assert all(set(text.split()) <= corpus | {"ok"} for text in out)
    changed = sum(a != b for a, b in zip(out, [*TEXTS, "ok"] * 2))
    assert changed > len(out) * 0.5
    assert any(len(t.split()) <= 5 for t in out), "some copies keep only an n-gram"


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (small strings)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def test_typo_copies_misspell_a_few_letters_of_texts_with_words_to_misspell() -> None:
    texts = ["The soup was cold and the staff was rude.", "ok", "I love it, 10/10!", "a b c"]
    copies = typo_copies(texts, 300, seed=13)
    assert len(copies) == 300 and copies == typo_copies(texts, 300, seed=13)
    assert copies != typo_copies(texts, 300, seed=14)
    assert {i for i, _ in copies} == {0, 2}, "only texts with a word of 3+ letters"
    for i, copy in copies:
        assert copy != texts[i]
        assert 1 <= _distance(copy, texts[i]) <= 4, (texts[i], copy)  # 1-2 edits of <= 2 each
        assert len(copy.split()) == len(texts[i].split())
    assert typo_copies(["ok", "a b"], 5, seed=13) == []
    assert typo_copies(texts, 0, seed=13) == []


def test_a_long_text_gets_more_typos_and_short_words_are_left_alone() -> None:
    rng = random.Random(1)
    long = " ".join(["wonderful"] * 60)
    assert all(_distance(misspell(long, rng), long) >= 3 for _ in range(20))
    assert misspell("it is ok", rng) == "it is ok"
