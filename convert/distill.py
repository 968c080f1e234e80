"""Distil the teacher into a student: soft targets (temperature T) plus hard labels."""

from __future__ import annotations

import logging

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from .teacher import hard_loss, train_steps

log = logging.getLogger(__name__)


def distill(student: nn.Module, tok: Tokenizer, texts: list[str], hard: list[int],
            binary: list[bool], soft_logits: np.ndarray, *, epochs: float, batch: int, lr: float,
            temperature: float, alpha: float, seed: int, desc: str = "distill") -> float:
    """Train ``student`` in place; ``hard[i] == -1`` marks unlabelled text, ``binary[i]`` a
    row whose label only says negative or positive. Returns seconds."""
    y, b = torch.tensor(hard), torch.tensor(binary, dtype=torch.bool)
    teacher = torch.tensor(soft_logits)

    def loss_of(group: list[int], logits: torch.Tensor) -> torch.Tensor:
        t_prob = torch.softmax(teacher[group] / temperature, dim=-1)
        kd = nn.functional.kl_div(torch.log_softmax(logits / temperature, dim=-1), t_prob,
                                  reduction="batchmean") * temperature**2
        labelled = y[group] >= 0
        ce = hard_loss(logits[labelled], y[group][labelled], b[group][labelled]) \
            if labelled.any() else logits.sum() * 0
        return alpha * kd + (1 - alpha) * ce

    return train_steps(student, tok, texts, epochs=epochs, batch=batch, lr=lr, seed=seed,
                       warmup_div=20, desc=desc, loss_of=loss_of)
