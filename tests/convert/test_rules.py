"""``[finetune]`` rules of convert/rules.py: which negated praises are taken, and which rating
texts are made with which targets. The fine-tuning itself runs in tests/convert/test_rebundle.py."""

from __future__ import annotations

import numpy as np

from edge_sentiment_convert.rules import (
    RATING_TARGETS,
    negate_verb,
    negated_positives,
    rating_phrases,
    rating_texts,
)

POS, NEU, NEG = [-1.0, 0.0, 2.0], [0.0, 2.0, -1.0], [2.0, 0.0, -1.0]


def test_negated_positives_takes_short_praise_with_a_negation_added() -> None:
    texts = ["The room was clean.",  # short praise, copula negated: taken
             "I loved the ending.",  # verb negated: taken
             "The room was clean.",  # a repeat: taken once
             "The staff isn't rude.",  # the negation would be removed, not added
             "The staff was kind " + "and the room was clean " * 4 + "all week.",  # too long
             "The soup was cold.",  # read as negative
             "The room was here.",  # read as neutral
             "Great, great, great.",  # nothing to negate
             "The battery lasts all day."]  # no copula: a listed third-person verb
    logits = np.array([POS, POS, POS, POS, POS, NEG, NEU, POS, POS])
    assert negated_positives(texts, logits, max_words=12) == \
        ["I didn't love the ending.", "The battery doesn't last all day.",
         "The room was not clean."]
    assert negated_positives(texts, logits, max_words=3) == []


def test_rating_phrases_use_digits_and_words_and_never_praise_with_only() -> None:
    one = rating_phrases(1)
    assert {"1 star", "One star.", "1/5", "1 out of 5"} <= set(one)
    assert not any(n in p.lower() for p in one for n in ("1 stars", "one stars"))  # singular
    five = rating_phrases(5)
    assert {"5 stars", "Five stars!", "5/5", "Rated five stars."} <= set(five)
    assert not any(p.startswith("Only") for p in five) and "Only 2 stars." in rating_phrases(2)
    assert not any("/" in p and not p[0].isdigit() for p in five)


def test_rating_texts_alternate_alone_and_after_neutral_short_texts() -> None:
    texts = ["Arrived Tuesday", "Terrible.", "It is blue!", "word " * 20]
    logits = np.array([NEU, NEG, NEU, NEU])
    out, targets = rating_texts(texts, logits, 40, max_words=12, seed=3)
    assert len(out) == 40 and targets.shape == (40, 3)
    assert out == rating_texts(texts, logits, 40, max_words=12, seed=3)[0]  # seeded
    for i, (text, target) in enumerate(zip(out, targets)):
        head, _, _ = text.rpartition(". ") if i % 2 else ("", "", text)
        assert head in (("Arrived Tuesday", "It is blue!") if i % 2 else ("",)) or \
            text.startswith("It is blue! ")
        rating = next(r for r in RATING_TARGETS if any(
            text.endswith(p) for p in rating_phrases(r)))
        assert np.allclose(target, RATING_TARGETS[rating]) and abs(target.sum() - 1) < 1e-6
    assert "Terrible" not in " ".join(out) and "word" not in " ".join(out)
    assert rating_texts(texts, logits, 0, 12, 3)[0] == []


def test_negate_verb_takes_the_first_listed_third_person_verb() -> None:
    assert negate_verb("It worked perfectly, and looks good.") == \
        "It didn't work perfectly, and looks good."
    assert negate_verb("Works great") == "Doesn't work great"
    assert negate_verb("The cable held up well.") == "The cable didn't hold up well."
    assert negate_verb("Networks are fine.") is None  # whole words only
    assert negate_verb("I love it") is None
