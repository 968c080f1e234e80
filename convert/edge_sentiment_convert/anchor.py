"""``edge-sentiment-convert anchor``: a new version of a built bundle with the same model files
and a tokenizer that reads every identity word as one anchor word the student already knows
(blinding after training, ``identity.anchor_tokenizer``). Swapping one group word for another
then cannot move a score, with no retraining.

Everything the card says about the student is measured again through the runtime (scores on
every dev and test split, the behavioural suite, batches, latency against the parent); the
teacher's figures are carried over from the parent's build, whose teacher and tokenizer this
does not touch. The card is generated whole, with the parent's "How it was made" section.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sentiment.bundle import Bundle, open_bundle, pack_bundle
from edge_sentiment.errors import ConfigError, ManifestError
from edge_sentiment.manifest import parse_semver, semver_key

from . import card as cards
from . import finish, report
from .bundle_writer import write_bundle
from .config import BuildConfig
from .data import LABELS, load_split
from .identity import reads_identity_as
from .layout import Artifact
from .vocab import write_anchored

log = logging.getLogger(__name__)
STUDENTS = (Artifact.STUDENT_INT8, Artifact.STUDENT_TFLITE)


@dataclass(frozen=True)
class AnchorJob:
    """What ``anchor`` makes: ``parent`` (a built bundle folder) as ``version`` with identity
    words read as ``anchor``; ``cfg`` is the build config whose sources, seed, speed settings
    and ``[targets]`` apply."""

    parent: Path
    anchor: str
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
        if not self.anchor.isalpha():
            raise ConfigError(f"--anchor {self.anchor!r} must be one word")


def parent_bundle(job: AnchorJob) -> Bundle:
    """The parent, opened (validated) and checked: a folder from a build, with both runtimes,
    its evaluation and behaviour files, and a version below ``job.version``."""
    parent = open_bundle(job.parent)
    m = parent.manifest
    if semver_key(job.version) <= semver_key(m.version):
        raise ConfigError(f"--version {job.version} must be above the parent's {m.version}")
    runtimes = {a.runtime for a in m.artifacts}
    if runtimes != {"onnx", "tflite"}:
        raise ConfigError(f"{job.parent}: a built bundle has one ONNX and one TFLite artifact, "
                          f"this one has {sorted(runtimes)}")
    already = reads_identity_as((parent.root / m.tokenizer.file).read_text(encoding="utf-8"))
    if already:
        raise ConfigError(f"{job.parent}: its tokenizer already reads identity words as "
                          f"{already!r}; anchoring it again would change nothing")
    for name in ("evaluation.json", "behaviour.json", "MODEL_CARD.md"):
        if not (parent.root / name).is_file():
            raise ConfigError(f"{job.parent}: {name} is missing (not a build's bundle)")
    return parent


def anchor_bundle(job: AnchorJob) -> Path:
    """Write ``job.out/bundle`` and its tar; return the bundle folder."""
    t0 = time.time()
    parent = parent_bundle(job)
    m = parent.manifest
    job.out.mkdir(parents=True, exist_ok=True)
    tok = write_anchored(parent.root / m.tokenizer.file, job.out / "tokenizer.json", job.anchor)
    dev = [e.text for src in job.cfg.teacher.sources for e in load_split(job.data, src, "dev")]
    models = {a: _model(parent, a.runtime) for a in STUDENTS}
    singles = {a: _single(job, parent, tok, models[a], dev) for a in STUDENTS}
    ctx = _measure(job, parent, singles, dev)
    out = job.out / "bundle"
    write_bundle(out, name=m.name, version=job.version, labels=LABELS,
                 max_seq_length=m.max_seq_length, tokenizer_file=tok,
                 models=list(models.values()), golden_texts=dev[:2000], reference_texts=dev,
                 per_label=job.cfg.golden_per_label, card="placeholder",
                 calibration=m.calibration)
    ctx["minutes"] = (time.time() - t0) / 60
    finish.write_reports(out, ctx, anchored_card)
    pack_bundle(out, job.out / f"{m.name}-{job.version}.tar")
    return out


def _model(parent: Bundle, runtime: str) -> dict[str, Any]:
    a = next(a for a in parent.manifest.artifacts if a.runtime == runtime)
    return {"path": parent.root / a.file, "runtime": a.runtime, "precision": a.precision,
            "input_shape": list(a.input_shape), "lengths": list(a.lengths)}


def _single(job: AnchorJob, parent: Bundle, tok: Path, model: dict[str, Any],
            dev: list[str]) -> Path:
    """A one-artifact bundle of ``model`` with the anchored tokenizer, for the runtime to
    evaluate exactly that artifact."""
    out: Path = job.out / "eval_bundles" / str(model["runtime"])
    write_bundle(out, name=parent.manifest.name, version=job.version, labels=LABELS,
                 max_seq_length=parent.manifest.max_seq_length, tokenizer_file=tok,
                 models=[model], golden_texts=dev[:400], reference_texts=dev[:2000],
                 per_label=2, calibration=parent.manifest.calibration)
    return out


def _measure(job: AnchorJob, parent: Bundle, singles: dict[Artifact, Path],
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
    src = cfg.speed_texts or (cfg.gap_sources or tuple(cfg.teacher.sources))[0]
    return {
        "name": parent.manifest.name, "version": job.version, "evals": evals,
        "behaviour": behaviour, "calibration": {},
        "consistency": batch_consistency(clfs[Artifact.STUDENT_INT8], dev),
        "speed": report.speed(timed, cfg.speed_runs),
        "speed_real": (f"{src}/dev", report.speed(timed, cfg.speed_runs,
                                                  texts=job.data / src / "dev.tsv")),
        "agreement": report.agreement(evals[Artifact.STUDENT_INT8],
                                      evals[Artifact.STUDENT_TFLITE]),
        "sizes": {"student int8 ONNX": singles_size(singles, Artifact.STUDENT_INT8),
                  "student int8 TFLite": singles_size(singles, Artifact.STUDENT_TFLITE)},
        "targets": {k: v for k, v in cfg.targets.items() if k != "max_build_minutes"},
        "gap_sources": cfg.gap_sources, "parent": parent, "job": job,
        "machine": report.machine(os.cpu_count() or 1), "identity_anchor": job.anchor,
        "min_neutral_recall": cfg.min_neutral_recall,
    }


def singles_size(singles: dict[Artifact, Path], which: Artifact) -> int:
    bundle = open_bundle(singles[which])
    return sum(a.bytes for a in bundle.manifest.artifacts)


def anchored_card(ctx: dict[str, Any]) -> str:
    """The whole card of an anchored bundle."""
    job: AnchorJob = ctx["job"]
    parent: Bundle = ctx["parent"]
    pm = parent.manifest
    cal = pm.calibration
    files = ", ".join(f"`{a.file}` (sha256 {a.sha256[:16]}...)" for a in pm.artifacts)
    ctx["calibration"] = {} if cal is None else {f"student (as in {pm.version})": {
        "temperature": cal.temperature, "bias": list(cal.bias)}}
    how = [
        "## How it was made", "",
        f"    edge-sentiment-convert anchor --bundle <{pm.name} {pm.version}> --anchor "
        f"{job.anchor} --version {job.version} --config {job.config_path} --data <shared/data> "
        f"--out {job.out}", "",
        f"The model files of {pm.name} {pm.version}, unchanged: {files}; its calibration, "
        "unchanged. The tokenizer reads each religion, ethnicity, nationality, sexuality and "
        "gender word (and the colours black and white) as "
        f"\"{job.anchor}\", a word the student was trained with, so swapping one for another "
        "cannot change a score. Every student figure above was measured with it; the teacher's "
        f"are {pm.version}'s (its teacher is untouched). Made in {ctx['minutes']:.1f} minutes "
        f"on {ctx['machine']}.", "",
        f"### How {pm.version} was made (from its card)", "",
        *_parent_how(parent), ""]
    return "\n".join([*cards.measured(ctx), *how, *cards.closing(ctx)]) + "\n"


def _parent_how(parent: Bundle) -> list[str]:
    """The parent card's "How it was made" section, its headings one level down."""
    text = (parent.root / "MODEL_CARD.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    try:
        start = lines.index("## How it was made") + 1
    except ValueError:
        return ["(the parent's card has no such section)"]
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return ["#" + x if x.startswith("### ") else x for x in lines[start:end]]

