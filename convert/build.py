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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge_sentiment.bundle import pack_bundle
from edge_sentiment.errors import ConfigError

from . import report
from .augment import augment_texts
from .bundle_writer import update_manifest, write_bundle
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
    weighted_rows,
)
from .distill import distill
from .export import export_onnx, export_tflite, quantize_onnx, quantize_teacher, quantize_tflite
from .stages import changed_since, stage_inputs
from .students import StudentModel, init_student, make_student
from .teacher import Teacher, fine_tune, load_tokenizer, predict_outputs, teacher_dir
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

    # -- plumbing ---------------------------------------------------------
    def stage(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` as stage ``name``, or return its saved result when the stage already ran
        with the same config inputs (``stages.stage_inputs``); changed inputs rerun it."""
        marker = self.stages / f"{name}.json"
        inputs = stage_inputs(self.cfg, name)
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
        model = Teacher(len(LABELS))
        tok = load_tokenizer(teacher_dir() / "tokenizer.json", self.cfg.max_seq_length)
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
        texts += augment_texts(texts, self.cfg.distill.augment, self.cfg.seed)
        tok = load_tokenizer(teacher_dir() / "tokenizer.json", self.cfg.max_seq_length)
        logits, features = predict_outputs(self.load_teacher(), tok, texts)
        np.save(self.out / "teacher" / "soft_logits.npy", logits)
        np.save(self.out / "teacher" / "features.npy", features)
        return {"texts": len(texts)}

    def teacher_features(self, count: int) -> np.ndarray:
        """The teacher's sentence embeddings of the first ``count`` distillation texts."""
        path = self.out / "teacher" / "features.npy"
        feats = np.load(path, mmap_mode="r") if path.is_file() else None
        if feats is None or len(feats) < count:
            raise ConfigError(f"{path} is missing or short (a soft_labels stage from before "
                              "feature distillation): delete stages/soft_labels.json and rerun")
        return np.asarray(feats[:count])

    def distill_set(self, d: DistillCfg
                    ) -> tuple[list[str], list[int], list[bool], np.ndarray, np.ndarray | None]:
        """Texts, hard labels (-1: none), binary-source flags, teacher logits and (with
        ``d.features``) teacher embeddings: the transfer set and its first ``d.augment``
        augmented copies (teacher labels only), weighted by ``d.source_weights``."""
        transfer = self.transfer_set()
        texts = [e.text for e in transfer]
        hard = [LABELS.index(e.label) if e.label else -1 for e in transfer]
        binary = self.binary_rows(transfer)
        extra = augment_texts(texts, d.augment, self.cfg.seed)
        n = len(texts) + len(extra)
        logits = np.load(self.out / "teacher" / "soft_logits.npy")
        if len(logits) < n:
            raise ConfigError(f"teacher soft labels cover {len(logits)} texts, the student needs "
                              f"{n}: rerun the soft_labels stage")
        feats = self.teacher_features(n) if d.features > 0 else None
        texts, hard, binary = texts + extra, hard + [-1] * len(extra), binary + [False] * len(extra)
        if not d.source_weights:
            return texts, hard, binary, logits[:n], feats
        rows = weighted_rows([e.source for e in transfer] * (1 + d.augment), d.source_weights,
                             self.cfg.seed)
        return ([texts[i] for i in rows], [hard[i] for i in rows], [binary[i] for i in rows],
                logits[rows], None if feats is None else feats[rows])

    def vocab(self) -> dict[str, Any]:
        texts = [e.text for e in self.transfer_set()]
        (self.out / "vocab").mkdir(parents=True, exist_ok=True)
        keep = prune_vocab(teacher_dir() / "tokenizer.json", texts, self.cfg.vocab.min_count,
                           self.cfg.vocab.max_size, self.out / "vocab" / "tokenizer.json")
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
            texts, hard, binary, logits, feats = self.distill_set(d)
            seconds = distill(
                model, tok, texts, hard, binary, logits, epochs=d.epochs, batch=d.batch,
                lr=d.lr, temperature=d.temperature, alpha=d.alpha, seed=seed, desc=s.name,
                features=feats, feature_weight=d.features)
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
                      tokenizer: Path) -> Path:
        """A one-artifact bundle, so the runtime can evaluate exactly that artifact."""
        dev = [e.text for src in self.cfg.teacher.sources for e in load_split(self.data, src, "dev")]
        shape = ONNX_SHAPE if runtime == "onnx" else [1, self.cfg.max_seq_length]
        out = self.out / "eval_bundles" / name
        write_bundle(out, name=name, version="0.0.0", labels=LABELS,
                     max_seq_length=self.cfg.max_seq_length, tokenizer_file=tokenizer,
                     models=[{"path": model, "runtime": runtime, "precision": precision,
                              "input_shape": shape}], golden_texts=dev[:400],
                     reference_texts=dev[:2000], per_label=2)
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
        tok = teacher_dir() / "tokenizer.json"
        for precision in ("fp32", "int8"):
            self.single_bundle(f"teacher-{precision}", folder / f"teacher.{precision}.onnx", "onnx",
                               precision, tok)
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

    def final_bundle(self, name: str, ctx: dict[str, Any]) -> Path:
        folder = self.out / "students" / name
        dev = [e.text for src in self.cfg.teacher.sources for e in load_split(self.data, src, "dev")]
        out = self.out / "bundle"
        models = [{"path": folder / "student.int8.onnx", "runtime": "onnx", "precision": "int8",
                   "input_shape": ONNX_SHAPE},
                  {"path": folder / "student.int8.tflite", "runtime": "tflite", "precision": "int8",
                   "input_shape": [1, self.cfg.max_seq_length]}]
        write_bundle(out, name=self.cfg.name, version=self.cfg.version, labels=LABELS,
                     max_seq_length=self.cfg.max_seq_length,
                     tokenizer_file=self.out / "vocab" / "tokenizer.json", models=models,
                     golden_texts=dev[:2000], reference_texts=dev,
                     per_label=self.cfg.golden_per_label, card="placeholder")
        pngs = {}
        for label, result in ctx["evals"].items():
            slug = label.replace(" ", "_").replace("(", "").replace(")", "").lower()
            report.confusion_png(result, label, out / f"confusion_{slug}.png")
            pngs[label] = f"confusion_{slug}.png"
        ctx["pngs"] = pngs
        evaluation = {k: {s: {m: r[m] for m in ("n", "accuracy", "macro_f1", "macro_recall",
                                                 "per_class", "binary")}
                          for s, r in v.items()} for k, v in ctx["evals"].items()}
        (out / "evaluation.json").write_text(json.dumps(evaluation, indent=1))
        (out / "MODEL_CARD.md").write_text(report.card(ctx), encoding="utf-8")
        student_eval = {s: {m: r[m] for m in ("n", "accuracy", "macro_f1", "macro_recall")}
                        for s, r in ctx["evals"]["student int8 (ONNX)"].items()}
        update_manifest(out, evaluation={"student_int8_onnx": student_eval,
                                         "agreement_onnx_tflite": ctx["agreement"]})
        pack_bundle(out, self.out / f"{self.cfg.name}-{self.cfg.version}.tar")
        return out

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
        tfl = self.stage("tflite", lambda: self.tflite(best["name"]))
        evals = self.stage("evaluate", lambda: self.evaluate(best["name"]))
        arts = self.artifacts(best["name"])
        spd = self.stage("speed", lambda: self.speed(arts))
        ctx = {**self.context(best, pareto, evals, spd["samples"], t0), "teacher_dev": teacher_dev,
               "speed_real": (spd["where"], spd["real"]),
               "max_dev_gap": self.cfg.max_dev_gap, "gap_sources": gap_sources,
               "speed_tie": SPEED_TIE}
        return self.final_bundle(best["name"], {**ctx, "tflite": tfl})

    def speed(self, arts: dict[str, tuple[Path, str]]) -> dict[str, Any]:
        """The chosen student against the teacher, on the bench's short samples and on the dev
        texts of ``speed_texts`` (real lengths)."""
        models = {k: arts[k] for k in ("student int8 (ONNX)", "student int8 (TFLite)",
                                       "teacher fp32 (ONNX)", "teacher int8 (ONNX)")}
        src = self.cfg.speed_texts or (self.cfg.gap_sources or tuple(self.cfg.teacher.sources))[0]
        runs = self.cfg.speed_runs
        return {"samples": report.speed(models, runs), "where": f"{src}/dev",
                "real": report.speed(models, runs, texts=self.data / src / "dev.tsv")}

    def context(self, best: dict[str, Any], pareto: list[dict[str, Any]], evals: dict[str, Any],
                spd: dict[str, Any], t0: float) -> dict[str, Any]:
        s = spd["student int8 (ONNX)"]["p50_ms"]
        summary = (f"Student int8 ONNX is {spd['teacher fp32 (ONNX)']['p50_ms'] / s:.1f}x faster "
                   f"than the teacher fp32 ONNX and {spd['teacher int8 (ONNX)']['p50_ms'] / s:.1f}x "
                   "faster than the teacher int8 ONNX (Optimum ORTQuantizer, per-channel dynamic).")
        folder = self.out / "students" / best["name"]
        return {
            "name": self.cfg.name, "version": self.cfg.version, "evals": evals, "speed": spd,
            "speed_summary": summary, "pareto": pareto, "config_name": self.config_path.name,
            "config_text": self.config_text,
            "command": f"python -m convert build --config {self.config_path} --data <shared/data> "
                       f"--out {self.out}",
            "build_minutes": self.build_seconds(pareto, t0) / 60, "stage_seconds": self.times,
            "machine": report.machine(torch.get_num_threads()),
            "agreement": report.agreement(evals["student int8 (ONNX)"],
                                          evals["student int8 (TFLite)"]),
            "sizes": {"student int8 ONNX": (folder / "student.int8.onnx").stat().st_size,
                      "student int8 TFLite": (folder / "student.int8.tflite").stat().st_size,
                      "student fp32 ONNX": (folder / "student.fp32.onnx").stat().st_size,
                      "teacher fp32 ONNX": (self.out / "teacher/teacher.fp32.onnx").stat().st_size},
        }


    def build_seconds(self, pareto: list[dict[str, Any]], t0: float) -> float:
        """Stage times, plus any distillation an earlier run did for a stage rerun since."""
        if not self.times:
            return time.time() - t0
        return float(sum(self.times.values()) + sum(r["distill_seconds"] for r in pareto
                                                    if r.get("distill_reused")))


def clean(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
