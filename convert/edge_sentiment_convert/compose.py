"""Compositional transfer text, labelled by the teacher: negated and contrasted copies of real
training texts, so the student sees how the teacher reads "not" and "but" beyond the few such
sentences the data holds (the teacher was fine-tuned on SST-2's phrase-level labels, where
negation and contrast are common; the review and tweet sources have far fewer).

- A negated copy flips the first copula or auxiliary of a text: "was great" -> "was not great",
  "isn't bad" -> "is bad", "I love" -> "I don't love".
- A contrast copy joins two texts of the transfer set: "A, but B" or "I thought A. It wasn't."

Nothing here uses the behavioural suite's templates or word lists.
"""

from __future__ import annotations

import random
import re

import numpy as np

_NEGATED = re.compile(r"\b(is|was|are|were|am)(\s+not\b|n't\b)", re.IGNORECASE)
_DONT = re.compile(r"\b(do|does|did)(\s+not\b|n't\b)\s+", re.IGNORECASE)
_COPULA = re.compile(r"\b(is|was|are|were|am)\s+(?!not\b)", re.IGNORECASE)
_VERB = re.compile(r"\b(I|we|you|they)\s+(love|like|loved|liked|enjoy|enjoyed|recommend|hate|"
                   r"hated|want|need|regret|trust|expect|think|believe|mind)\b", re.IGNORECASE)
_PAST = {"loved": "love", "liked": "like", "enjoyed": "enjoy", "hated": "hate"}


def negate(text: str) -> str | None:
    """``text`` with its first negation removed, or else its first copula or verb negated;
    None when it has none of those."""
    out = negation(text)
    return out[0] if out else None


def negation(text: str) -> tuple[str, bool] | None:
    """``(negate(text), whether a negation was added rather than removed)``, or None."""
    for pattern, repl in ((_NEGATED, r"\1"), (_DONT, "")):
        out, n = pattern.subn(repl, text, count=1)
        if n:
            return (out if pattern is _NEGATED else _fix_do(out)), False
    out, n = _COPULA.subn(lambda m: f"{m.group(1)} not ", text, count=1)
    if n:
        return out, True
    match = _VERB.search(text)
    if match:
        verb = match.group(2)
        aux = "didn't" if verb.lower() in _PAST else "don't"
        base = _PAST.get(verb.lower(), verb)
        return text[:match.start(2)] + f"{aux} {base}" + text[match.end(2):], True
    return None


def _fix_do(text: str) -> str:
    return re.sub(r"\s{2,}", " ", text)


def negated_copies(texts: list[str], count: int, seed: int) -> list[tuple[int, str, bool]]:
    """Up to ``count`` ``(index of the original, negated copy, negation added)``, drawn
    without repeats from ``texts``."""
    if count <= 0:
        return []
    rng = random.Random(f"negate:{seed}")
    order = list(range(len(texts)))
    rng.shuffle(order)
    out = []
    for i in order:
        flipped = negation(texts[i])
        if flipped and flipped[0] != texts[i] and len(texts[i].split()) <= 30:
            out.append((i, *flipped))
            if len(out) == count:
                break
    return out


def is_target(value: object) -> bool:
    """Whether ``value`` can be a ``negation_target``: empty, or three probabilities > 0 that
    sum to 1 (negative, neutral, positive)."""
    return isinstance(value, list) and (not value or (
        len(value) == 3 and all(isinstance(p, (int, float)) and not isinstance(p, bool) and p > 0
                                for p in value) and abs(sum(value) - 1) < 1e-6))


def target_logits(target: tuple[float, ...] | list[float] | np.ndarray,
                  temperature: float) -> np.ndarray:
    """Logits whose softmax at ``temperature`` is ``target`` (one row of probabilities, or
    several): a soft label to distil."""
    return temperature * np.log(np.asarray(target, dtype=np.float32))


def negation_rule(logits: np.ndarray, originals: np.ndarray, added: np.ndarray,
                  target: tuple[float, ...], temperature: float) -> np.ndarray:
    """The teacher's logits of negated copies, with ``target`` (probabilities, read at
    ``temperature``) in place of the teacher's label where a negation was *added* to a text the
    teacher reads as negative and the teacher still reads the copy as negative: negating a
    complaint ("was not bad") does not make a complaint, a prior the teacher lacks."""
    out = np.array(logits, dtype=np.float32, copy=True)
    hit = added & (originals.argmax(1) == 0) & (out.argmax(1) == 0)
    out[hit] = target_logits(target, temperature)
    return out


_JOINS = ("{a}, but {b}", "{a} But {b}", "{a} However, {b}", "{a}, although {b}",
          "I thought {a_low} It wasn't.", "At first {a_low} Now {b_low}")


def contrast_texts(texts: list[str], count: int, seed: int) -> list[str]:
    """``count`` texts joining two short texts of ``texts`` with a contrast."""
    if count <= 0:
        return []
    rng = random.Random(f"contrast:{seed}")
    short = [t for t in texts if 3 <= len(t.split()) <= 25]
    if len(short) < 2:
        return []
    out = []
    for _ in range(count):
        a, b = rng.sample(short, 2)
        a, b = a.rstrip(" .!?"), b.rstrip()
        join = rng.choice(_JOINS)
        out.append(join.format(a=a, b=b, a_low=_lower_first(a) + ".", b_low=_lower_first(b)))
    return out


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text
