"""Write a bundle in the runtime's format, with golden examples computed by the runtime.

Golden examples are chosen where every artifact agrees with a clear margin, so
the self-test catches a broken backend (all-zero outputs) without flaking on
borderline texts. The reference distributions for drift come from dev text.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_sentiment.backends import BackendOptions, backend_module
from edge_sentiment.bundle import artifact_for, open_bundle, sha256_file, write_manifest
from edge_sentiment.classifier import predict_probs
from edge_sentiment.manifest import Artifact, Calibration, Golden, Manifest, TokenizerSpec
from edge_sentiment.metrics import histogram
from edge_sentiment.tokenize import TextEncoder

log = logging.getLogger(__name__)
# A golden example's top class must lead the runner-up by this much, so another CPU's int8
# kernels cannot flip it. Golden scores are made one text per call, as the self-test runs them:
# int8 activations are quantized per call, so batch-mates would move a text's scores.
MIN_GOLDEN_MARGIN = 0.02


def _probs(encoder: TextEncoder, art_path: Path, art: Artifact, texts: list[str],
           batch: int = 64, calibration: Calibration | None = None) -> np.ndarray:
    module = backend_module(art.runtime)
    provider = "CPUExecutionProvider" if art.runtime == "onnx" else "xnnpack"
    backend = module.create(art_path, BackendOptions(provider, 2, art.fixed_length, art.lengths))
    rows = [predict_probs(encoder, backend, texts[start:start + batch], calibration)[0]
            for start in range(0, len(texts), batch)]
    backend.close()
    return np.concatenate(rows)


def _pick_golden(labels: tuple[str, ...], texts: list[str], all_probs: list[np.ndarray],
                 per_label: int) -> list[Golden]:
    ref = all_probs[0]
    agree = np.all([p.argmax(1) == ref.argmax(1) for p in all_probs], axis=0)
    spread = np.max([np.abs(p - ref).max(1) for p in all_probs], axis=0)
    top2 = np.sort(ref, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    golden: list[Golden] = []
    relaxed: list[Golden] = []  # low-margin examples, used only to cover a second label
    for li, label in enumerate(labels):
        ok = [i for i in np.argsort(-margin) if agree[i] and ref[i].argmax() == li
              and spread[i] < 0.05 and len(texts[i]) < 300]
        firm = [i for i in ok if margin[i] >= MIN_GOLDEN_MARGIN]
        golden += [_gold(texts[i], label, labels, ref[i]) for i in firm[:per_label]]
        relaxed += [_gold(texts[i], label, labels, ref[i]) for i in ok[:1] if not firm]
    if len({g.label for g in golden}) < 2:  # a weak model: the runtime needs two labels
        golden += relaxed
    return golden


def _gold(text: str, label: str, labels: tuple[str, ...], row: np.ndarray) -> Golden:
    return Golden(text, label, {lab: round(float(row[j]), 4) for j, lab in enumerate(labels)})


def reference_distribution(labels: tuple[str, ...], probs: np.ndarray) -> dict[str, Any]:
    """Class mix and confidence histogram of the reference model on dev text."""
    pred = probs.argmax(1)
    conf = probs.max(1)
    hist = histogram([float(c) for c in conf])
    n = max(len(pred), 1)
    return {"class_mix": {lab: round(float((pred == i).sum()) / n, 4) for i, lab in enumerate(labels)},
            "confidence_hist": [round(h / n, 4) for h in hist], "n": len(pred)}


def write_bundle(out: Path, *, name: str, version: str, labels: tuple[str, ...],
                 max_seq_length: int, tokenizer_file: Path, models: list[dict[str, Any]],
                 golden_texts: list[str], reference_texts: list[str],
                 evaluation: dict[str, Any] | None = None, card: str | None = None,
                 placeholder: bool = False, per_label: int = 3,
                 calibration: Calibration | None = None) -> Manifest:
    """Copy models and tokenizer into ``out`` and write a validated manifest.

    ``models``: dicts with ``path``, ``runtime``, ``precision``, ``input_shape`` and, for a
    TFLite file with one signature per length, ``lengths``.
    """
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copyfile(tokenizer_file, out / "tokenizer.json")
    artifacts = []
    for m in models:
        target = Path(m["path"]).name
        shutil.copyfile(m["path"], out / target)
        artifacts.append(artifact_for(out, target, m["runtime"], m["precision"],
                                      tuple(m["input_shape"]),  # type: ignore[arg-type]
                                      tuple(m.get("lengths", ()))))
    manifest = Manifest(
        name=name, version=version, labels=labels, max_seq_length=max_seq_length,
        truncation="head", tokenizer=TokenizerSpec("tokenizer.json", sha256_file(out / "tokenizer.json")),
        artifacts=tuple(artifacts), golden=(), placeholder=placeholder,
        evaluation=evaluation or {}, model_card="MODEL_CARD.md" if card else None,
        calibration=calibration)
    encoder = TextEncoder(out / "tokenizer.json", manifest)
    probs = [_probs(encoder, out / a.file, a, golden_texts, batch=1, calibration=calibration)
             for a in artifacts]
    # Also batched: the load self-test runs the goldens as one batch too, and dynamic int8
    # moves a text's scores with its batch-mates; a golden must hold in both, or the runtime
    # would refuse the bundle this writes (seen on a smoke build's int8 teacher: 0.125 > 0.1).
    batched = [_probs(encoder, out / a.file, a, golden_texts, batch=64, calibration=calibration)
               for a in artifacts]
    golden = _pick_golden(labels, golden_texts, probs + batched, per_label)
    ref_probs = _probs(encoder, out / artifacts[0].file, artifacts[0], reference_texts,
                       calibration=calibration)
    manifest = replace(manifest, golden=tuple(golden),
                       reference=reference_distribution(labels, ref_probs))
    if card:
        (out / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    write_manifest(out, manifest)
    open_bundle(out)  # validate what was written
    log.info("wrote bundle %s %s to %s with %d golden examples", name, version, out, len(golden))
    return manifest


def update_manifest(out: Path, **changes: Any) -> None:
    """Patch top-level manifest fields in place (e.g. evaluation after the fact)."""
    path = out / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    open_bundle(out)
