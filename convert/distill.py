"""Distil the teacher into a student: soft targets (temperature T) plus hard labels."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from .model import Student
from .teacher import batches

log = logging.getLogger(__name__)


def distill(student: Student, tok: Tokenizer, texts: list[str], hard: list[int],
            soft_logits: np.ndarray, *, epochs: float, batch: int, lr: float,
            temperature: float, alpha: float, seed: int, desc: str = "distill") -> float:
    """Train ``student`` in place; ``hard[i] == -1`` marks unlabelled text. Returns seconds."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    steps_per_epoch = (len(texts) + batch - 1) // batch
    total = max(1, int(steps_per_epoch * epochs))
    opt = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, total // 20)) * max(0.0, 1 - s / total))
    y = torch.tensor(hard)
    teacher = torch.tensor(soft_logits)
    student.train()
    step, t0 = 0, time.time()
    bar = tqdm(total=total, desc=desc)
    while step < total:
        for group, ids, mask in batches(tok, texts, batch, shuffle_seed=seed + step):
            logits = student(ids, mask)
            t_prob = torch.softmax(teacher[group] / temperature, dim=-1)
            kd = nn.functional.kl_div(torch.log_softmax(logits / temperature, dim=-1), t_prob,
                                      reduction="batchmean") * temperature**2
            labelled = y[group] >= 0
            ce = nn.functional.cross_entropy(logits[labelled], y[group][labelled]) \
                if labelled.any() else logits.sum() * 0
            loss = alpha * kd + (1 - alpha) * ce
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if step >= total:
                break
    bar.close()
    student.eval()
    return time.time() - t0
