"""More transfer text for distillation: perturbed copies of the training texts, labelled only by
the teacher's soft targets (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into
Simple Neural Networks", whose augmented BiLSTM reached 90.7 on SST-2).

Each copy of a text drops each word with probability ``DROP``, replaces it with a word drawn from
the corpus with probability ``SWAP``, and then, with probability ``NGRAM``, keeps only a random
1-5 word span. Copy ``c`` of every text comes from its own seeded generator, so the first ``k``
copies are the same whether ``k`` or more were asked for: the teacher labels the most any
student uses once, and each student trains on a prefix.

``typo_copies`` misspells texts (letters swapped, dropped, doubled or hit on a neighbouring key)
for ``[finetune] typos``: each copy learns what the student reads in the clean text.
"""

from __future__ import annotations

import random

DROP, SWAP, NGRAM, MAX_NGRAM = 0.1, 0.1, 0.25, 5


def augment_texts(texts: list[str], copies: int, seed: int) -> list[str]:
    """``copies`` perturbed versions of ``texts``: all of copy 0, then all of copy 1, ..."""
    if copies <= 0:
        return []
    words = [w for t in texts for w in t.split()]
    out: list[str] = []
    for copy in range(copies):
        rng = random.Random(f"augment:{seed}:{copy}")
        out.extend(_perturb(t, rng, words) for t in texts)
    return out


def _perturb(text: str, rng: random.Random, corpus: list[str]) -> str:
    kept = []
    for word in text.split():
        r = rng.random()
        if r < DROP:
            continue
        kept.append(rng.choice(corpus) if r < DROP + SWAP else word)
    if len(kept) > 1 and rng.random() < NGRAM:
        n = rng.randint(1, min(MAX_NGRAM, len(kept)))
        start = rng.randint(0, len(kept) - n)
        kept = kept[start:start + n]
    return " ".join(kept) or text


_KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS = {c: row[max(0, i - 1):i] + row[i + 1:i + 2]
               for row in _KEY_ROWS for i, c in enumerate(row)}


def typo_copies(texts: list[str], n: int, seed: int) -> list[tuple[int, str]]:
    """``n`` misspelt copies of texts drawn from ``texts`` (seeded; a text may be drawn again):
    each as (index of the clean text, copy). One or two edits, one more per 20 words, each in a
    word of at least three letters; texts without such a word are never drawn."""
    rng = random.Random(f"typos:{seed}")
    pool = [i for i, t in enumerate(texts) if _editable(t.split())]
    out: list[tuple[int, str]] = []
    while pool and len(out) < n:
        i = rng.choice(pool)
        copy = misspell(texts[i], rng)
        if copy != texts[i]:
            out.append((i, copy))
    return out


def misspell(text: str, rng: random.Random) -> str:
    """``text`` with a few typing errors (see ``typo_copies``); the same text if it has no word
    of three letters or more."""
    words = text.split()
    for _ in range(1 + rng.randrange(2) + len(words) // 20):
        where = _editable(words)
        if not where:
            break
        k = rng.choice(where)
        words[k] = _edit(words[k], rng)
    return " ".join(words)


def _editable(words: list[str]) -> list[int]:
    return [k for k, w in enumerate(words) if sum(c.isalpha() for c in w) >= 3]


def _edit(word: str, rng: random.Random) -> str:
    letters = [j for j, c in enumerate(word) if c.isalpha()]
    j = rng.choice(letters[:-1])
    kind = rng.randrange(4)
    if kind == 0:  # two neighbouring letters swapped
        return word[:j] + word[j + 1] + word[j] + word[j + 2:]
    if kind == 1:  # a letter dropped
        return word[:j] + word[j + 1:]
    if kind == 2:  # a letter doubled
        return word[:j] + word[j] + word[j:]
    near = _NEIGHBOURS.get(word[j].lower())  # a neighbouring key
    return word[:j] + rng.choice(near) + word[j + 1:] if near else word[:j] + word[j + 1:]
