"""The student's training rows: the transfer set, its augmented copies, emoji copies and
identity counterfactuals, each with the teacher's soft label.

The soft_labels stage labels, in this order: the transfer set (T texts), ``[distill] augment``
perturbed copies of it (copy 0 of every text, then copy 1, ...), then ``labelled_extras``:
``emoji_copies`` texts with an emoji put in, negated copies and contrast copies
(convert/compose.py). A student that uses fewer augmented copies takes a prefix of them.
Counterfactual copies (identity terms swapped) reuse the original text's soft label, so they
need no labelling of their own.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from edge_sentiment.errors import ConfigError

from .augment import augment_texts
from .compose import contrast_texts, negated_copies, negation_rule
from .config import DistillCfg
from .data import LABELS, Example, weighted_rows
from .emoji_tokens import emoji_texts
from .identity import counterfactuals


def labelled_texts(texts: list[str], d: DistillCfg, seed: int) -> list[str]:
    """Every text the soft_labels stage labels, in the order ``distill_rows`` reads them: the
    transfer texts, their ``augment`` copies, then ``labelled_extras``."""
    return texts + augment_texts(texts, d.augment, seed) + labelled_extras(texts, d, seed)


def labelled_extras(texts: list[str], d: DistillCfg, seed: int) -> list[str]:
    """The teacher-labelled texts made from the transfer set, after its augmented copies."""
    negated = [text for _, text, _ in negated_copies(texts, d.negation_copies, seed)]
    return (emoji_texts(texts, d.emoji_copies, seed) + negated
            + contrast_texts(texts, d.contrast_copies, seed))


def _negation_rule(logits: np.ndarray, texts: list[str], d: DistillCfg, seed: int,
                   extra_start: int) -> np.ndarray:
    """``logits`` with ``[distill] negation_target`` put on the negated copies it covers."""
    copies = negated_copies(texts, d.negation_copies, seed)
    if not d.negation_target or not copies:
        return logits
    start = extra_start + len(emoji_texts(texts, d.emoji_copies, seed))
    rows = slice(start, start + len(copies))
    out = np.array(logits, copy=True)
    out[rows] = negation_rule(logits[rows], np.asarray(logits[[i for i, _, _ in copies]]),
                              np.asarray([added for _, _, added in copies]),
                              tuple(d.negation_target), d.temperature)
    return out


@dataclass(frozen=True)
class DistillSet:
    texts: list[str]
    hard: list[int]  # -1: no hard label
    binary: list[bool]  # from a two-label source
    logits: np.ndarray
    features: np.ndarray | None


def distill_rows(transfer: list[Example], binary_sources: Collection[str], d: DistillCfg,
                 labelled_augment: int, seed: int, logits: np.ndarray,
                 feats: np.ndarray | None) -> DistillSet:
    """The rows one student trains on. ``labelled_augment`` is how many augmented copies the
    soft_labels stage labelled (``[distill] augment``), which fixes where emoji copies start."""
    texts = [e.text for e in transfer]
    hard = [LABELS.index(e.label) if e.label else -1 for e in transfer]
    binary = [e.source in binary_sources for e in transfer]
    count = len(texts)
    extra = augment_texts(texts, d.augment, seed)
    n = count + len(extra)
    extras = labelled_extras(texts, d, seed)
    extra_start = count * (1 + labelled_augment)
    need = extra_start + len(extras) if extras else n
    if len(logits) < need or (feats is not None and len(feats) < need):
        raise ConfigError(f"teacher soft labels cover {len(logits)} texts, the student needs "
                          f"{need}: rerun the soft_labels stage")
    logits = _negation_rule(logits, texts, d, seed, extra_start)
    rows = list(range(n))
    if d.source_weights:
        rows = weighted_rows([e.source for e in transfer] * (1 + d.augment), d.source_weights,
                             seed)
    all_texts = texts + extra
    all_hard = hard + [-1] * len(extra)
    all_binary = binary + [False] * len(extra)
    out_texts = [all_texts[i] for i in rows]
    out_hard = [all_hard[i] for i in rows]
    out_binary = [all_binary[i] for i in rows]
    out_texts += extras
    rows += range(extra_start, extra_start + len(extras))
    out_hard += [-1] * len(extras)
    out_binary += [False] * len(extras)
    for i, text in counterfactuals(texts, seed, d.counterfactual):
        out_texts.append(text)
        rows.append(i)
        out_hard.append(hard[i])
        out_binary.append(binary[i])
    index = np.asarray(rows)
    return DistillSet(out_texts, out_hard, out_binary, np.asarray(logits[index]),
                      None if feats is None else np.asarray(feats[index]))
