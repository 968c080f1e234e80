"""Two more rules for ``[finetune]``: priors the shipped student lacks, each a set of texts with a
target distribution (negative, neutral, positive) that the fine-tune learns alongside the
student's own logits.

- ``negated_positives``: a negation added to a short text the student reads as positive ("The
  room was clean." -> "The room was not clean.") where the student does not read the copy as
  negative. The mirror of ``finetune.short_negations``: with both, "not" flips what follows
  rather than being a cue of its own.
  Where ``compose.negation`` finds no copula or pronoun verb, a third-person verb of this
  module's list is negated: "The battery lasts all day." -> "The battery doesn't last all day."
- ``rating_texts``: star and point ratings ("5 stars", "One star.", "4/5", "2 out of 5"), alone
  and after short transfer texts the student reads as neutral ("Arrived Tuesday. 5 stars."). A
  review's rating is its clearest sentiment; 2.6.3 read "5 stars" and "1 star" as neutral.

The phrases are this project's own (nothing from the behavioural suite or CheckList).
"""

from __future__ import annotations

import random
import re

import numpy as np

from .compose import negation

# Rating (on a scale of 5) -> target (negative, neutral, positive).
RATING_TARGETS = {1: (0.85, 0.11, 0.04), 2: (0.72, 0.22, 0.06), 3: (0.20, 0.60, 0.20),
                  4: (0.06, 0.24, 0.70), 5: (0.04, 0.10, 0.86)}
_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
_FORMS = ("{n} {stars}", "{n} {stars}.", "{n} {stars}!", "{n}/5", "{n} out of 5",
          "{n} out of 5 stars.", "Rated {n} {stars}.", "{n} {stars} from me.",
          "Giving it {n} {stars}.", "{n} {stars} for this one.", "Only {n} {stars}.")


def rating_phrases(rating: int) -> list[str]:
    """Every phrase this module makes for ``rating`` (1-5), digits and words, sorted."""
    stars = "star" if rating == 1 else "stars"
    out = set()
    for form in _FORMS:
        if form.startswith("Only") and rating > 3:
            continue  # "only five stars" is not praise
        for n in (str(rating), _WORDS[rating], _WORDS[rating].capitalize()):
            if "/" in form and not n.isdigit():
                continue
            text = form.format(n=n, stars=stars)
            out.add(text[:1].upper() + text[1:])
    return sorted(out)


def rating_texts(texts: list[str], logits: np.ndarray, count: int, max_words: int,
                 seed: int) -> tuple[list[str], np.ndarray]:
    """``count`` rating texts and their target probabilities (rows of three): half the phrases
    alone, half after a text of ``texts`` of at most ``max_words`` words whose ``logits`` say
    neutral."""
    if count <= 0:
        return [], np.zeros((0, 3), dtype=np.float32)
    rng = random.Random(f"ratings:{seed}")
    neutral = [t.rstrip() for t, z in zip(texts, logits)
               if int(np.argmax(z)) == 1 and len(t.split()) <= max_words]
    phrases = {r: rating_phrases(r) for r in RATING_TARGETS}
    out, targets = [], []
    for i in range(count):
        rating = rng.randint(1, 5)
        phrase = rng.choice(phrases[rating])
        if i % 2 and neutral:
            head = rng.choice(neutral)
            phrase = f"{head}{'' if head[-1:] in '.!?' else '.'} {phrase}"
        out.append(phrase)
        targets.append(RATING_TARGETS[rating])
    return out, np.asarray(targets, dtype=np.float32)


# Third-person verbs a review praises with -> their base form; present tense takes "doesn't",
# past "didn't".
_PRESENT = {"works": "work", "lasts": "last", "fits": "fit", "holds": "hold", "helps": "help",
            "looks": "look", "feels": "feel", "sounds": "sound", "smells": "smell",
            "tastes": "taste", "runs": "run", "charges": "charge", "delivers": "deliver",
            "performs": "perform", "exceeds": "exceed", "meets": "meet", "deserves": "deserve"}
_PAST = {"worked": "work", "lasted": "last", "held": "hold", "helped": "help",
         "looked": "look", "felt": "feel", "sounded": "sound", "smelled": "smell",
         "tasted": "taste", "ran": "run", "charged": "charge", "delivered": "deliver",
         "performed": "perform", "exceeded": "exceed", "met": "meet", "arrived": "arrive"}
_THIRD = re.compile(r"(?:^|(?<=\w ))(" + "|".join(sorted({*_PRESENT, *_PAST})) + r")\b", re.IGNORECASE)


def negate_verb(text: str) -> str | None:
    """``text`` with its first listed third-person verb negated ("lasts" -> "doesn't last",
    "worked" -> "didn't work"; "Works great" -> "Doesn't work great"), or None when it has
    none at its start or after another word."""
    match = _THIRD.search(text)
    if not match:
        return None
    verb = match.group(1).lower()
    aux, base = ("doesn't", _PRESENT[verb]) if verb in _PRESENT else ("didn't", _PAST[verb])
    if match.start(1) == 0:
        aux = aux.capitalize()
    return text[:match.start(1)] + f"{aux} {base}" + text[match.end(1):]


def short_negated(texts: list[str], logits: np.ndarray, max_words: int, label: int,
                  verbs: bool = False) -> list[str]:
    """Copies, with a negation added (``compose.negation``; with ``verbs``, else through
    ``negate_verb``), of the texts of at most ``max_words`` words whose ``logits`` say ``label``
    (0 negative, 2 positive); without repeats, sorted."""
    out = set()
    for text, row in zip(texts, logits):
        if len(text.split()) <= max_words and int(np.argmax(row)) == label:
            flipped = negation(text)
            if flipped is None and verbs:
                verb = negate_verb(text)
                flipped = (verb, True) if verb else None
            if flipped and flipped[1] and flipped[0] != text:
                out.add(flipped[0])
    return sorted(out)


def negated_positives(texts: list[str], logits: np.ndarray, max_words: int) -> list[str]:
    """``short_negated`` of the texts read as positive, through a listed verb where no copula or
    pronoun verb is found. (The caller keeps the copies the student does not already read as
    negative.)"""
    return short_negated(texts, logits, max_words, 2, verbs=True)
