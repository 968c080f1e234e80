"""Stages ``validate`` (read every input before any work) and ``teacher`` (fine-tune)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from edge_sentiment.errors import ConfigError

from ..data import LABELS, Example, eval_splits, load_split
from ..identity import counterfactuals
from ..layout import Layout
from ..teacher import Teacher, fine_tune, load_tokenizer, teacher_dir

if TYPE_CHECKING:
    from ..build import Build
    from ..config import BuildConfig


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
    """Fine-tune the teacher: from the wheel's encoder, or with ``build --from`` from an earlier
    build's teacher (``[teacher] reuse = "continue"``; ``"as_is"`` keeps it unchanged)."""
    t = b.cfg.teacher
    model = Teacher(len(LABELS))
    train: list[Example] = []
    if b.earlier is not None:
        model.load_state_dict(torch.load(b.earlier, weights_only=True))
    if b.earlier is None or t.reuse != "as_is":
        train = b.train_set()
        train += [replace(train[i], text=text) for i, text in
                  counterfactuals([e.text for e in train], b.cfg.seed, t.counterfactual)]
        tok = load_tokenizer(b.teacher_tokenizer, b.cfg.max_seq_length)
        fine_tune(model, tok, [e.text for e in train], [LABELS.index(e.label) for e in train],
                  b.binary_rows(train), epochs=t.epochs, batch=t.batch, lr=t.lr, seed=b.cfg.seed)
    b.layout.teacher.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), b.layout.teacher_weights)
    return TeacherTrained(len(train), sorted(b.binary))


def earlier_teacher(path: Path, cfg: BuildConfig) -> Path:
    """The fine-tuned teacher of the earlier build at ``path`` (``build --from``), checked
    against this config: it must allow reuse and read emoji as that teacher did."""
    layout = Layout(path)
    weights = layout.teacher_weights
    if cfg.teacher.reuse == "never":
        raise ConfigError(f"--from {path}: this config does not reuse a teacher "
                          "([teacher] reuse = \"continue\" or \"as_is\" allows it)")
    if not weights.is_file():
        what = ("a bundle carries no teacher: pass the build folder that made it"
                if (path / "manifest.json").is_file() else f"no fine-tuned teacher ({weights})")
        raise ConfigError(f"--from {path}: {what}")
    marker = layout.stages / "teacher.json"
    saved = json.loads(marker.read_text()).get("inputs", {}) if marker.is_file() else {}
    if bool(saved.get("teacher.emoji", False)) != cfg.teacher.emoji:
        raise ConfigError(f"--from {path}: that teacher was trained with [teacher] emoji = "
                          f"{str(not cfg.teacher.emoji).lower()}, this config says otherwise")
    return weights
