"""Stages ``validate`` (read every input before any work) and ``teacher`` (fine-tune)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from ..data import LABELS, eval_splits, load_split
from ..identity import counterfactuals
from ..teacher import Teacher, fine_tune, load_tokenizer, teacher_dir

if TYPE_CHECKING:
    from ..build import Build


@dataclass(frozen=True)
class Validated:
    counts: dict[str, int]  # rows per set: train, transfer, <source>/dev; eval_files


@dataclass(frozen=True)
class TeacherTrained:
    examples: int
    binary_sources: list[str]


def validate(b: Build) -> Validated:
    """Read every file the build needs, so bad input fails before training."""
    counts = {"train": len(b.train_set()), "transfer": len(b.transfer_set())}
    for source in b.cfg.teacher.sources:
        counts[f"{source}/dev"] = len(load_split(b.data, source, "dev"))
    counts["eval_files"] = len(eval_splits(b.data))
    teacher_dir()
    return Validated(counts)


def teacher(b: Build) -> TeacherTrained:
    t = b.cfg.teacher
    train = b.train_set()
    train += [replace(train[i], text=text)
              for i, text in counterfactuals([e.text for e in train], b.cfg.seed, t.counterfactual)]
    model = Teacher(len(LABELS))
    tok = load_tokenizer(b.teacher_tokenizer, b.cfg.max_seq_length)
    fine_tune(model, tok, [e.text for e in train], [LABELS.index(e.label) for e in train],
              b.binary_rows(train), epochs=t.epochs, batch=t.batch, lr=t.lr, seed=b.cfg.seed)
    b.layout.teacher.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), b.layout.teacher_weights)
    return TeacherTrained(len(train), sorted(b.binary))
