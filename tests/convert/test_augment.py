"""Augmented transfer text: deterministic, prefix-consistent copies built from the corpus."""

from __future__ import annotations

from edge_sentiment_convert.augment import augment_texts

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
