"""More transfer text for distillation: perturbed copies of the training texts, labelled only by
the teacher's soft targets (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into
Simple Neural Networks", whose augmented BiLSTM reached 90.7 on SST-2).

Each copy of a text drops each word with probability ``DROP``, replaces it with a word drawn from
the corpus with probability ``SWAP``, and then, with probability ``NGRAM``, keeps only a random
1-5 word span. Copy ``c`` of every text comes from its own seeded generator, so the first ``k``
copies are the same whether ``k`` or more were asked for: the teacher labels the most any
student uses once, and each student trains on a prefix.
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
