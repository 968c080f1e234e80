"""Distil the teacher into a student: soft targets (temperature T) plus hard labels, and
optionally feature distillation: the student's pooled vector, through a linear map used only in
training, pulled towards the teacher's sentence embedding (cosine loss). Three logits per text
say little about *why*; the teacher's 384-number embedding says more."""

from __future__ import annotations

import logging

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from .students import StudentModel
from .teacher import hard_loss, train_steps

log = logging.getLogger(__name__)


class _WithFeatures(nn.Module):
    """Training-time wrapper: logits and the projected pooled vector side by side
    ([batch, labels + teacher width]). The projection is dropped after training; the student's
    own graph (what is exported) does not change."""

    def __init__(self, student: StudentModel, teacher_width: int) -> None:
        super().__init__()
        self.student = student
        self.project = nn.Linear(student.feature_width, teacher_width)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = self.student.features(input_ids, attention_mask)
        logits = self.student.head(pooled)
        return torch.cat([logits, self.project(pooled)], dim=-1)


def distill(student: StudentModel, tok: Tokenizer, texts: list[str], hard: list[int],
            binary: list[bool], soft_logits: np.ndarray, *, epochs: float, batch: int, lr: float,
            temperature: float, alpha: float, seed: int, desc: str = "distill",
            features: np.ndarray | None = None, feature_weight: float = 0.0) -> float:
    """Train ``student`` in place; ``hard[i] == -1`` marks unlabelled text, ``binary[i]`` a
    row whose label only says negative or positive. With ``feature_weight > 0``, ``features``
    holds the teacher's sentence embedding of each text. Returns seconds."""
    y, b = torch.tensor(hard), torch.tensor(binary, dtype=torch.bool)
    teacher = torch.tensor(soft_logits)
    n_labels = teacher.shape[1]
    target = None
    if feature_weight > 0:
        if features is None or len(features) < len(texts):
            raise ValueError("feature distillation needs the teacher's embedding of every text")
        target = torch.from_numpy(np.asarray(features[: len(texts)]))

    def loss_of(group: list[int], out: torch.Tensor) -> torch.Tensor:
        logits = out[:, :n_labels]
        t_prob = torch.softmax(teacher[group] / temperature, dim=-1)
        kd = nn.functional.kl_div(torch.log_softmax(logits / temperature, dim=-1), t_prob,
                                  reduction="batchmean") * temperature**2
        labelled = y[group] >= 0
        ce = hard_loss(logits[labelled], y[group][labelled], b[group][labelled]) \
            if labelled.any() else logits.sum() * 0
        loss = alpha * kd + (1 - alpha) * ce
        if target is not None:
            cos = nn.functional.cosine_similarity(out[:, n_labels:], target[group].float(), dim=-1)
            loss = loss + feature_weight * (1 - cos).mean()
        return loss

    torch.manual_seed(seed)  # the projection's start, reproducibly
    model = student if target is None else _WithFeatures(student, target.shape[1])
    seconds = train_steps(model, tok, texts, epochs=epochs, batch=batch, lr=lr, seed=seed,
                          warmup_div=20, desc=desc, loss_of=loss_of)
    student.eval()
    return seconds
