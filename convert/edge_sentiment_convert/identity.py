"""Identity terms: kept whole in the student's vocabulary, and swapped in real training texts.

A counterfactual copy of a training text that names an identity group replaces each such word
with another word of the same group list (case kept), and carries the original's label: the
teacher learns from it that the group does not decide the sentiment, and the student's copies
carry the teacher's soft label of the *original* text, so a bias the teacher kept is not
copied either. The lists are this project's own (this is for training; the behavioural suite
in ``edge_sentiment/check`` has its own, separate lexicons).
"""

from __future__ import annotations

import random
import re

GROUPS: dict[str, tuple[str, ...]] = {
    "religion": ("christian", "muslim", "jewish", "hindu", "buddhist", "sikh", "atheist",
                 "catholic", "protestant", "mormon", "orthodox", "agnostic"),
    "nationality": ("american", "mexican", "canadian", "chinese", "indian", "russian", "german",
                    "french", "british", "irish", "italian", "spanish", "japanese", "korean",
                    "african", "nigerian", "kenyan", "egyptian", "iranian", "iraqi", "syrian",
                    "pakistani", "afghan", "turkish", "polish", "ukrainian", "brazilian",
                    "cuban", "vietnamese", "filipino", "israeli", "palestinian", "saudi",
                    "somali", "ethiopian", "greek", "swedish", "dutch", "australian"),
    "ethnicity": ("asian", "hispanic", "latino", "latina", "arab", "caucasian", "european",
                  "indigenous", "jew"),
    "sexuality": ("gay", "lesbian", "straight", "bisexual", "transgender", "queer",
                  "heterosexual", "homosexual", "asexual", "nonbinary"),
    "gender": ("man", "woman", "men", "women", "boy", "girl", "male", "female", "guy", "lady"),
}
# Plural or paired forms must stay grammatical: these groups swap only within the same number.
_PAIRS = {"man": "singular", "woman": "singular", "boy": "singular", "girl": "singular",
          "guy": "singular", "lady": "singular", "men": "plural", "women": "plural"}
TERMS = {w: g for g, words in GROUPS.items() for w in words}
_WORD = re.compile(r"\b(" + "|".join(sorted(TERMS, key=len, reverse=True)) + r")\b", re.IGNORECASE)
# Group words that are also everyday words where a swap would make nonsense ("straight to
# the point", "a man of his word" is fine, "the gay nineties" rare): only swapped *into*.
_NOT_FROM = {"straight", "orthodox", "guy"}


def _choices(word: str) -> list[str]:
    group = TERMS[word]
    same = [w for w in GROUPS[group] if w != word]
    if word in _PAIRS:
        same = [w for w in same if _PAIRS.get(w) == _PAIRS[word]]
    return same


def _cased(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    return word.capitalize() if template[:1].isupper() else word


def swap_identity(text: str, rng: random.Random) -> str | None:
    """``text`` with every identity term swapped for another of its group, or None if it names
    none (or only words that are not swapped from)."""
    changed = False

    def repl(m: re.Match[str]) -> str:
        nonlocal changed
        word = m.group(0).lower()
        if word in _NOT_FROM:
            return m.group(0)
        changed = True
        return _cased(m.group(0), rng.choice(_choices(word)))

    out = _WORD.sub(repl, text)
    return out if changed else None


def counterfactuals(texts: list[str], seed: int, copies: int = 1) -> list[tuple[int, str]]:
    """``(index, swapped text)`` for each text that names an identity group, ``copies`` each."""
    out: list[tuple[int, str]] = []
    for c in range(copies):
        rng = random.Random(f"identity:{seed}:{c}")
        for i, text in enumerate(texts):
            swapped = swap_identity(text, rng)
            if swapped is not None and swapped != text:
                out.append((i, swapped))
    return out


def kept_words() -> list[str]:
    """Identity words the pruned vocabulary keeps whole, whatever their count in the data."""
    return sorted(TERMS)
