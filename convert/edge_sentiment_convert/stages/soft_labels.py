"""Stage ``soft_labels``: the teacher's logits and features for the transfer set and its
augmented, emoji, negated and contrast copies; and the student rows built from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edge_sentiment.errors import ConfigError

from ..config import DistillCfg
from ..teacher import load_tokenizer, predict_outputs
from ..transfer import DistillSet, distill_rows, labelled_texts

if TYPE_CHECKING:
    from ..build import Build


@dataclass(frozen=True)
class SoftLabels:
    texts: int


def soft_labels(b: Build) -> SoftLabels:
    """Teacher logits for the transfer set, then for its ``[distill] augment`` copies."""
    texts = labelled_texts([e.text for e in b.transfer_set()], b.cfg.distill, b.cfg.seed)
    tok = load_tokenizer(b.teacher_tokenizer, b.cfg.max_seq_length)
    logits, features = predict_outputs(b.load_teacher(), tok, texts)
    np.save(b.layout.soft_logits, logits)
    np.save(b.layout.features, features)
    return SoftLabels(len(texts))


def distill_set(b: Build, d: DistillCfg) -> DistillSet:
    """The student's training rows (see ``transfer.py``)."""
    logits = np.load(b.layout.soft_logits)
    feats = None
    if d.features > 0:
        if not b.layout.features.is_file():
            raise ConfigError(f"{b.layout.features} is missing (a soft_labels stage from before "
                              "feature distillation): delete stages/soft_labels.json and rerun")
        feats = np.load(b.layout.features, mmap_mode="r")
    return distill_rows(b.transfer_set(), b.binary, d, b.cfg.distill.augment, b.cfg.seed,
                        logits, feats)
