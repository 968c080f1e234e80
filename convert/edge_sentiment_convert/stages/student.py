"""Stage ``student-<name>``: distil one candidate, export and quantize it, score it on dev and
time it. Its row is what the choice (``choose.py``) and the card's Pareto table read."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import torch

from .. import report
from ..choose import Candidate
from ..distill import distill
from ..export import export_onnx, quantize_onnx
from ..students import init_student
from ..teacher import load_tokenizer
from . import changed_since, stage_inputs
from .soft_labels import distill_set

if TYPE_CHECKING:
    from ..build import Build


def student(b: Build, index: int) -> Candidate:
    s = b.cfg.students[index]
    d = b.cfg.distill_for(s)
    keep = json.loads(b.layout.vocab_keep.read_text())
    seed = d.seed or b.cfg.seed
    torch.manual_seed(seed)  # the student's random start, the same in a resumed build
    model = b.make_student(index, len(keep))
    if s.init_from_teacher:
        init_student(model, b.load_teacher().bert, keep)
    folder = b.layout.student(s.name)
    trained = folder / "distill.json"
    inputs = stage_inputs(b.cfg, f"student-{s.name}")
    saved = json.loads(trained.read_text()) if trained.is_file() else {}
    reused = bool(saved) and not changed_since(saved, inputs)
    if reused:  # trained with this config by a run cut off before export
        model.load_state_dict(torch.load(folder / "student.pt", weights_only=True))
        seconds = saved["seconds"]
    else:
        tok = load_tokenizer(b.layout.vocab_tokenizer, b.cfg.max_seq_length)
        rows = distill_set(b, d)
        seconds = distill(
            model, tok, rows.texts, rows.hard, rows.binary, rows.logits, epochs=d.epochs,
            batch=d.batch, lr=d.lr, temperature=d.temperature, alpha=d.alpha, seed=seed,
            desc=s.name, features=rows.features, feature_weight=d.features)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), folder / "student.pt")
        trained.write_text(json.dumps({"seconds": round(seconds, 1), "inputs": inputs}))
    export_onnx(model, folder / "student.fp32.onnx")
    quantize_onnx(folder / "student.fp32.onnx", folder / "student.int8.onnx",
                  per_channel=b.cfg.onnx_per_channel)
    bundle = b.single_bundle(f"cand-{s.name}", folder / "student.int8.onnx", "onnx", "int8",
                             b.layout.vocab_tokenizer)
    dev = report.eval_bundle(bundle, "onnx", b.data, b.cfg.eval_limit)
    dev = {k: v for k, v in dev.items() if k.endswith("/dev")}
    sources = list(b.cfg.teacher.sources)
    bench = report.speed({"s": (bundle, "onnx")}, b.cfg.speed_runs)["s"]
    return Candidate(
        name=s.name, params=sum(p.numel() for p in model.parameters()),
        onnx_int8_mb=(folder / "student.int8.onnx").stat().st_size / 1e6, p50_ms=bench["p50_ms"],
        dev_macro_f1=report.mean_macro_f1(dev, "dev", sources),
        dev_by_source=report.score_by_source(dev, "dev", sources),
        distill_seconds=round(seconds, 1), distill_reused=reused, config=model.cfg.to_json())
