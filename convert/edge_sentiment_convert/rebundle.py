"""``edge-sentiment-convert rebundle``: a new version of a built bundle, made from its trained
student as a config's last stages say, without its teacher:

- ``identity_anchor``: a tokenizer that reads every identity word as one word the student
  already knows (``identity.anchor_tokenizer``), so swapping one group word for another cannot
  move a score;
- ``onnx_quant = "static"`` (and ``onnx_graph``) or ``tflite_lengths``: the weights recovered
  from the bundle's dynamic int8 ONNX file and exported again (``reexport.py``); otherwise the
  model files are kept as they are;
- ``[finetune]`` with epochs > 0: the recovered weights trained a little more
  (``finetune.py``) before that export, and the calibration fitted again on pooled dev.

Everything the card says about the student is measured again through the runtime (scores on
every dev and test split, the behavioural suite, batches, latency against the parent); the
teacher's figures are carried over from the parent's build, whose teacher this does not touch.
The card is generated whole, with the parent's "How it was made" section.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_sentiment.bundle import Bundle, open_bundle, pack_bundle
from edge_sentiment.errors import ConfigError, ManifestError
from edge_sentiment.manifest import Calibration, parse_semver, semver_key

from . import finish, reexport, report
from .bundle_writer import write_bundle
from .calibrate import fit
from .config import BuildConfig
from .data import LABELS, binary_sources, load_split
from .identity import blind_words, reads_identity_as
from .layout import Artifact
from .rebundle_card import rebundle_card
from .stages.calibrate import floors
from .stages.tflite import scheme_agreement
from .vocab import write_anchored

log = logging.getLogger(__name__)
STUDENTS = (Artifact.STUDENT_INT8, Artifact.STUDENT_TFLITE)


@dataclass(frozen=True)
class RebundleJob:
    """``parent`` (a built bundle folder) as ``version``, made as ``cfg`` (a build config)
    says; the config's sources, seed, speed settings and ``[targets]`` apply too."""

    parent: Path
    version: str
    cfg: BuildConfig
    config_path: Path
    data: Path
    out: Path

    def __post_init__(self) -> None:
        try:
            parse_semver(self.version)
        except ManifestError as exc:
            raise ConfigError(f"--version {self.version!r} is not a version like 2.0.1") from exc


def parent_bundle(job: RebundleJob) -> Bundle:
    """The parent, opened (validated) and checked: a build's bundle with both runtimes, its
    evaluation, behaviour and card, a version below ``job.version``, and not anchored twice."""
    parent = open_bundle(job.parent)
    m = parent.manifest
    if semver_key(job.version) <= semver_key(m.version):
        raise ConfigError(f"--version {job.version} must be above the parent's {m.version}")
    runtimes = sorted(a.runtime for a in m.artifacts)
    if runtimes != ["onnx", "tflite"]:
        raise ConfigError(f"{job.parent}: a built bundle has one ONNX and one TFLite artifact, "
                          f"this one has {runtimes}")
    already = reads_identity_as((parent.root / m.tokenizer.file).read_text(encoding="utf-8"))
    if already and job.cfg.identity_anchor:
        raise ConfigError(f"{job.parent}: its tokenizer already reads identity words as "
                          f"{already!r}; identity_anchor would change nothing")
    for name in ("evaluation.json", "behaviour.json", "MODEL_CARD.md"):
        if not (parent.root / name).is_file():
            raise ConfigError(f"{job.parent}: {name} is missing (not a build's bundle)")
    return parent


def rebundle(job: RebundleJob) -> Path:
    """Write ``job.out/bundle`` and its tar; return the bundle folder."""
    t0 = time.time()
    parent = parent_bundle(job)
    m = parent.manifest
    job.out.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(job, parent)
    dev = [e.text for src in job.cfg.teacher.sources for e in load_split(job.data, src, "dev")]
    models = {a.runtime: _kept(parent, a.runtime) for a in STUDENTS}
    made: dict[str, Any] = {}
    if reexport.wanted(job.cfg):
        new, made = reexport.reexport(job.cfg, job.data, parent, tok, dev, job.out / "student")
        models.update(new)
    cal = parent.manifest.calibration
    if made.get("finetune") and job.cfg.calibrate:  # new weights: fitted again
        cal, made["calibration"] = _refit(job, parent, tok, models, dev)
    singles = {Artifact.STUDENT_INT8: _single(job, parent, tok, models["onnx"], dev, "onnx", cal)}
    if "modes" in models["tflite"]:  # schemes made: the build's rule picks one
        schemes = {mode: _single(job, parent, tok, dict(models["tflite"], path=path), dev,
                                 f"tflite-{mode}", cal)
                   for mode, path in models["tflite"]["modes"].items()}
        agreement = scheme_agreement(singles[Artifact.STUDENT_INT8], schemes, job.data,
                                     job.cfg.eval_limit)
        models["tflite"] = reexport.pick(models["tflite"], agreement, job.out / "student")
        made |= {"tflite_agreement": agreement, "tflite_mode": models["tflite"]["mode"]}
        singles[Artifact.STUDENT_TFLITE] = schemes[models["tflite"]["mode"]]
    else:
        singles[Artifact.STUDENT_TFLITE] = _single(job, parent, tok, models["tflite"], dev,
                                                   "tflite", cal)
    ctx = _measure(job, parent, singles, dev) | {"calibration": _calibration(parent, made)}
    out = job.out / "bundle"
    write_bundle(out, name=m.name, version=job.version, labels=LABELS,
                 max_seq_length=m.max_seq_length, tokenizer_file=tok,
                 models=[models["onnx"], models["tflite"]], golden_texts=dev[:2000],
                 reference_texts=dev, per_label=job.cfg.golden_per_label, card="placeholder",
                 calibration=cal)
    ctx |= {"minutes": (time.time() - t0) / 60, "made": made}
    finish.write_reports(out, ctx, rebundle_card)
    pack_bundle(out, job.out / f"{m.name}-{job.version}.tar")
    return out


def _tokenizer(job: RebundleJob, parent: Bundle) -> Path:
    src = parent.root / parent.manifest.tokenizer.file
    dst = job.out / "tokenizer.json"
    if job.cfg.identity_anchor:
        return write_anchored(src, dst, job.cfg.identity_anchor)
    shutil.copyfile(src, dst)
    return dst


def _kept(parent: Bundle, runtime: str) -> dict[str, Any]:
    a = next(a for a in parent.manifest.artifacts if a.runtime == runtime)
    return {"path": parent.root / a.file, "runtime": a.runtime, "precision": a.precision,
            "input_shape": list(a.input_shape), "lengths": list(a.lengths)}


def _refit(job: RebundleJob, parent: Bundle, tok: Path, models: dict[str, dict[str, Any]],
           dev: list[str]) -> tuple[Calibration, dict[str, Any]]:
    """Temperature and biases fitted on the new ONNX file's dev outputs, as the build's calibrate
    stage does (with ``calibrate_tflite``, on each new TFLite file's too, every file's dev split
    a source of its own); and the fit as the card reports it."""
    files = {"onnx": models["onnx"]}
    if job.cfg.calibrate_tflite:  # fine-tuned: reexport made every scheme's file
        tfl = models["tflite"]
        files |= {f"tflite-{mode}": dict(tfl, path=path) for mode, path in tfl["modes"].items()}
    sources = list(job.cfg.teacher.sources)
    binary = binary_sources(job.data, job.cfg.teacher.sources)
    sets = []
    for name, model in files.items():
        raw = _single(job, parent, tok, model, dev, f"{name}-uncalibrated", None)
        sets += report.dev_sets(raw, model["runtime"], job.data, sources, binary)
    fitted = fit(sets, floors(job.cfg, _teacher_dev(parent)), job.cfg.confidence_map,
                 job.cfg.confidence_max_ece)
    log.info("calibration fitted again on %s: %s", ", ".join(files), fitted)
    return (Calibration(fitted.temperature, fitted.bias, fitted.confidence),
            asdict(fitted) | {"fitted_on": list(files)})


def _teacher_dev(parent: Bundle) -> dict[str, float]:
    """The parent's teacher fp32 dev score per source (0-1), as its card reports them."""
    evals = json.loads((parent.root / "evaluation.json").read_text(encoding="utf-8"))
    return {key.split("/")[0]: float(r["accuracy"] if r.get("binary") else r["macro_f1"])
            for key, r in evals[str(Artifact.TEACHER_FP32)].items() if key.endswith("/dev")}


def _single(job: RebundleJob, parent: Bundle, tok: Path, model: dict[str, Any],
            dev: list[str], name: str, cal: Calibration | None) -> Path:
    """A one-artifact bundle of ``model`` with the new tokenizer, for the runtime to evaluate
    exactly that artifact."""
    out: Path = job.out / "eval_bundles" / name
    write_bundle(out, name=parent.manifest.name, version=job.version, labels=LABELS,
                 max_seq_length=parent.manifest.max_seq_length, tokenizer_file=tok,
                 models=[{k: v for k, v in model.items() if k not in ("modes", "mode")}],
                 golden_texts=dev[:400], reference_texts=dev[:2000], per_label=2,
                 calibration=cal)
    return out


def _measure(job: RebundleJob, parent: Bundle, singles: dict[Artifact, Path],
             dev: list[str]) -> dict[str, Any]:
    """The card's figures: the students measured here, the teacher's from the parent."""
    from edge_sentiment import SentimentClassifier
    from edge_sentiment.check import run_suite
    from edge_sentiment.evaluate import batch_consistency

    cfg = job.cfg
    carried = json.loads((parent.root / "evaluation.json").read_text(encoding="utf-8"))
    evals: dict[str, Any] = {str(a): report.eval_bundle(p, a.runtime, job.data, cfg.eval_limit)
                             for a, p in singles.items()}
    evals[str(Artifact.TEACHER_FP32)] = carried[str(Artifact.TEACHER_FP32)]
    clfs = {a: SentimentClassifier.load(p, runtime=a.runtime) for a, p in singles.items()}
    behaviour = {str(a): run_suite(c, seed=cfg.seed).to_json() for a, c in clfs.items()}
    teacher = json.loads((parent.root / "behaviour.json").read_text(encoding="utf-8"))
    behaviour[str(Artifact.TEACHER_FP32)] = teacher[str(Artifact.TEACHER_FP32)]
    timed = {str(a): (p, a.runtime) for a, p in singles.items()}
    timed[f"baseline {parent.manifest.version} int8 (ONNX)"] = (parent.root, "onnx")
    timed[f"baseline {parent.manifest.version} int8 (TFLite)"] = (parent.root, "tflite")
    src = cfg.speed_texts or (cfg.gap_sources or tuple(cfg.teacher.sources))[0]
    return {
        "name": parent.manifest.name, "version": job.version, "evals": evals,
        "behaviour": behaviour,
        "consistency": batch_consistency(clfs[Artifact.STUDENT_INT8], dev),
        "onnx_quant": _quant(singles[Artifact.STUDENT_INT8]),
        "speed": report.speed(timed, cfg.speed_runs),
        "speed_real": (f"{src}/dev", report.speed(timed, cfg.speed_runs,
                                                  texts=job.data / src / "dev.tsv")),
        "agreement": report.agreement(evals[Artifact.STUDENT_INT8],
                                      evals[Artifact.STUDENT_TFLITE]),
        "sizes": {"student int8 ONNX": _bytes(singles[Artifact.STUDENT_INT8]),
                  "student int8 TFLite": _bytes(singles[Artifact.STUDENT_TFLITE])},
        "targets": {k: v for k, v in cfg.targets.items() if k != "max_build_minutes"},
        "gap_sources": cfg.gap_sources, "parent": parent, "job": job,
        "machine": report.machine(os.cpu_count() or 1), "identity_anchor": cfg.identity_anchor,
        "identity_words": len(blind_words()),
        "min_neutral_recall": cfg.min_neutral_recall, "fit_to_targets": cfg.fit_to_targets,
        "confidence_max_ece": cfg.confidence_max_ece,
    }


def _calibration(parent: Bundle, made: dict[str, Any]) -> dict[str, Any]:
    """The card's calibration entry: the fit after fine-tuning, else the parent's, unchanged."""
    if "calibration" in made:
        return {"student (fitted again after fine-tuning)": made["calibration"]}
    cal = parent.manifest.calibration
    if cal is None:
        return {}
    return {f"student (as in {parent.manifest.version})": {
        "temperature": cal.temperature, "bias": list(cal.bias),
        "confidence": list(cal.confidence)}}


def _bytes(single: Path) -> int:
    return sum(a.bytes for a in open_bundle(single).manifest.artifacts)


def _quant(single: Path) -> str:
    """"dynamic" when the ONNX file quantizes activations per call, else "static"."""
    import onnx

    model = open_bundle(single).manifest.artifacts[0]
    ops = {n.op_type for n in onnx.load(str(single / model.file)).graph.node}
    return "dynamic" if "DynamicQuantizeLinear" in ops else "static"
