"""The build's last steps: behaviour, speed, the card's context and the shipped bundle."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from edge_sentiment.bundle import pack_bundle

from . import report
from .bundle_writer import update_manifest, write_bundle
from .card import card
from .choose import Candidate
from .data import LABELS, load_split
from .layout import Artifact

if TYPE_CHECKING:
    from .build import Build

BEHAVIOUR_MODELS = (Artifact.STUDENT_INT8, Artifact.STUDENT_TFLITE, Artifact.TEACHER_FP32)


def behaviour(arts: dict[Artifact, tuple[Path, str]], seed: int) -> dict[str, Any]:
    """The behavioural suite (edge_sentiment.check) on the student and the teacher."""
    from edge_sentiment import SentimentClassifier
    from edge_sentiment.check import run_suite

    out = {}
    for label in BEHAVIOUR_MODELS:
        path, runtime = arts[label]
        out[str(label)] = run_suite(SentimentClassifier.load(path, runtime=runtime), seed=seed).to_json()
    return out


def consistency(build: Build, arts: dict[Artifact, tuple[Path, str]]) -> dict[str, Any]:
    """The student int8 ONNX on every dev text, alone and in batches
    (``edge_sentiment.evaluate.batch_consistency``)."""
    from edge_sentiment import SentimentClassifier
    from edge_sentiment.evaluate import batch_consistency

    path, runtime = arts[Artifact.STUDENT_INT8]
    texts = [e.text for src in build.cfg.teacher.sources
             for e in load_split(build.data, src, "dev")]
    return batch_consistency(SentimentClassifier.load(path, runtime=runtime), texts)


def speed(build: Build, arts: dict[Artifact, tuple[Path, str]]) -> dict[str, Any]:
    """The chosen student against the teacher (and ``speed_baseline``, the bundle it replaces),
    on the bench's short samples and on the dev texts of ``speed_texts`` (real lengths)."""
    cfg = build.cfg
    models = {str(a): arts[a] for a in (Artifact.STUDENT_INT8, Artifact.STUDENT_TFLITE,
                                        Artifact.TEACHER_FP32, Artifact.TEACHER_INT8)}
    baseline = report.baseline_bundle(cfg.speed_baseline, build.out)
    if baseline is not None:
        models[f"baseline {baseline[1]} int8 (ONNX)"] = (baseline[0], "onnx")
    src = cfg.speed_texts or (cfg.gap_sources or tuple(cfg.teacher.sources))[0]
    runs = cfg.speed_runs
    return {"samples": report.speed(models, runs), "where": f"{src}/dev",
            "real": report.speed(models, runs, texts=build.data / src / "dev.tsv")}


def context(build: Build, best: Candidate, pareto: list[Candidate],
            evals: dict[str, Any], spd: dict[str, Any], t0: float) -> dict[str, Any]:
    cfg, out = build.cfg, build.out
    s = spd[Artifact.STUDENT_INT8]["p50_ms"]
    summary = (f"Student int8 ONNX is {spd[Artifact.TEACHER_FP32]['p50_ms'] / s:.1f}x faster "
               f"than the teacher fp32 ONNX and {spd[Artifact.TEACHER_INT8]['p50_ms'] / s:.1f}x "
               "faster than the teacher int8 ONNX (Optimum ORTQuantizer, per-channel dynamic).")
    folder = build.layout.student(best.name)
    return {
        "name": cfg.name, "version": cfg.version, "evals": evals, "speed": spd,
        "speed_summary": summary, "pareto": [asdict(c) for c in pareto],
        "config_name": build.config_path.name,
        "config_text": build.config_text, "targets": cfg.targets,
        "command": f"edge-sentiment-convert build --config {build.config_path} --data <shared/data> "
                   f"--out {out}",
        "build_minutes": build.build_seconds(pareto, t0) / 60, "stage_seconds": build.times,
        "machine": report.machine(torch.get_num_threads()),
        "agreement": report.agreement(evals[Artifact.STUDENT_INT8],
                                      evals[Artifact.STUDENT_TFLITE]),
        "sizes": {"student int8 ONNX": build.final_onnx(best.name).stat().st_size,
                  "student int8 TFLite": (folder / "student.int8.tflite").stat().st_size,
                  "student fp32 ONNX": (folder / "student.fp32.onnx").stat().st_size,
                  "teacher fp32 ONNX": build.layout.teacher_onnx("fp32").stat().st_size},
    }


def final_bundle(build: Build, name: str, ctx: dict[str, Any]) -> Path:
    cfg = build.cfg
    folder = build.layout.student(name)
    dev = [e.text for src in cfg.teacher.sources for e in load_split(build.data, src, "dev")]
    out = build.layout.bundle
    models = [{"path": build.final_onnx(name), "runtime": "onnx", "precision": "int8",
               "input_shape": [None, None]},
              {"path": folder / "student.int8.tflite", "runtime": "tflite", "precision": "int8",
               "input_shape": [1, cfg.max_seq_length], "lengths": list(cfg.tflite_lengths)}]
    write_bundle(out, name=cfg.name, version=cfg.version, labels=LABELS,
                 max_seq_length=cfg.max_seq_length,
                 tokenizer_file=build.final_tokenizer, models=models,
                 golden_texts=dev[:2000], reference_texts=dev,
                 per_label=cfg.golden_per_label, card="placeholder",
                 calibration=build.cal.get("student"))
    write_reports(out, ctx, card)
    pack_bundle(out, build.out / f"{cfg.name}-{cfg.version}.tar")
    return out


def write_reports(out: Path, ctx: dict[str, Any], make_card: Callable[[dict[str, Any]], str]) -> None:
    """Into the bundle ``out``: the confusion images, ``evaluation.json``, ``behaviour.json``,
    the card (``make_card(ctx)``) and the student's dev and test scores in the manifest."""
    pngs = {}
    for label, result in ctx["evals"].items():
        slug = label.replace(" ", "_").replace("(", "").replace(")", "").lower()
        if any("confusion" in r for r in result.values()):  # measured here, not carried over
            report.confusion_png(result, label, out / f"confusion_{slug}.png")
            pngs[label] = f"confusion_{slug}.png"
    ctx["pngs"] = pngs
    keys = ("n", "accuracy", "macro_f1", "macro_recall", "per_class", "binary", "ece")
    evaluation = {k: {s: {m: r.get(m) for m in keys} for s, r in v.items()}
                  for k, v in ctx["evals"].items()}
    (out / "evaluation.json").write_text(json.dumps(evaluation, indent=1))
    if ctx.get("behaviour"):
        (out / "behaviour.json").write_text(json.dumps(ctx["behaviour"], indent=1))
    (out / "MODEL_CARD.md").write_text(make_card(ctx), encoding="utf-8")
    student_eval = {s: {m: r.get(m) for m in ("n", "accuracy", "macro_f1", "macro_recall", "ece")}
                    for s, r in ctx["evals"][Artifact.STUDENT_INT8].items()}
    update_manifest(out, evaluation={"student_int8_onnx": student_eval,
                                     "agreement_onnx_tflite": ctx["agreement"]})
