"""The bundle manifest: frozen dataclasses validated in ``__post_init__``.

Parsing does no I/O: :func:`parse_manifest` takes the decoded JSON object.
Every error names the field that is wrong (``artifacts[1].sha256``).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from .backends import NAMES
from .errors import ManifestError, UnsafePathError

FORMAT = "edge-sentiment-bundle"
FORMAT_VERSIONS = (1,)
RUNTIMES = NAMES  # the registered backends
# The three classes, in the order of a model's logits: what the default bundle and the build use
# (a bundle may declare other labels in its manifest).
LABELS = ("negative", "neutral", "positive")
PRECISIONS = ("fp32", "fp16", "int8")
TRUNCATIONS = ("head", "head_tail")
_SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
                     r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$", re.ASCII)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_member_path(path: str, where: str) -> str:
    """Refuse a relative path that could leave its bundle; return it unchanged."""
    if not isinstance(path, str) or not path:
        raise ManifestError(f"{where}: must be a non-empty relative path")
    pure = PurePosixPath(path)
    if pure.is_absolute() or "\\" in path or ".." in pure.parts or path.startswith("~"):
        raise UnsafePathError(f"{where}: path {path!r} leaves the bundle")
    return path


def parse_semver(version: str) -> tuple[int, int, int]:
    """Return (major, minor, patch); raise ManifestError when not semver (ASCII digits only:
    "1٠.0.0" is refused, not read as 10.0.0)."""
    match = _SEMVER.match(version) if isinstance(version, str) else None
    if match is None:
        raise ManifestError(f"version: {version!r} is not a semantic version X.Y.Z")
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def semver_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
    """A sort key with SemVer 2.0 precedence: a pre-release sorts below its release
    (0.0.2-rc1 < 0.0.2), identifiers compare numerically when numeric, else in ASCII order,
    numeric below alphanumeric, and a longer list of equal identifiers above a shorter one;
    build metadata is ignored."""
    major, minor, patch = parse_semver(version)
    match = _SEMVER.match(version)
    pre = match.group(4) if match else None
    if pre is None:
        return major, minor, patch, 1, ()
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return major, minor, patch, 0, parts


def _need(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise ManifestError(f"{where}: {what}")


@dataclass(frozen=True)
class Calibration:
    """How raw model logits become probabilities: ``softmax((logits + bias) / temperature)``,
    then, with ``confidence`` = (slope, offset), the winning class's probability p becomes
    ``sigmoid(slope * log(p / (1 - p)) + offset)`` and the others keep their ratios.

    Fitted on pooled dev text by the build (``convert/calibrate.py``): the biases move the
    decision between classes (fitted for macro-F1), the temperature makes the scores mean
    probabilities (fitted for log-loss), and the confidence map bends what one temperature
    cannot (a model over-confident on its doubtful calls and under-confident on its sure ones).
    The map never changes a label: the winner's new probability is held just above its
    runner-up's."""

    temperature: float = 1.0
    bias: tuple[float, ...] = ()
    confidence: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        _need(isinstance(self.temperature, (int, float)) and not isinstance(self.temperature, bool)
              and math.isfinite(self.temperature) and 0.05 <= self.temperature <= 20,
              "calibration.temperature", "must be a finite number in [0.05, 20]")
        _need(all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b)
                  and abs(b) <= 20 for b in self.bias),
              "calibration.bias", "must hold finite numbers in [-20, 20]")
        _need(self.confidence == () or (
            len(self.confidence) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in self.confidence)
            and 0.05 <= self.confidence[0] <= 20 and abs(self.confidence[1]) <= 20),
              "calibration.confidence", "must be [slope, offset] with slope in [0.05, 20] and "
              "offset in [-20, 20]")


@dataclass(frozen=True)
class Artifact:
    """One model file of a bundle."""

    runtime: str
    precision: str
    file: str
    sha256: str
    bytes: int
    input_shape: tuple[int | None, int | None]
    # A TFLite file with one signature per fixed length (``len16``, ``len32``, ...), ascending,
    # the last equal to input_shape's length: each text runs in the shortest that fits it.
    lengths: tuple[int, ...] = ()
    where: str = field(default="artifact", compare=False, repr=False)

    def __post_init__(self) -> None:
        w = self.where
        _need(self.runtime in RUNTIMES, f"{w}.runtime", f"must be one of {RUNTIMES}")
        _need(self.precision in PRECISIONS, f"{w}.precision", f"must be one of {PRECISIONS}")
        check_member_path(self.file, f"{w}.file")
        _need(isinstance(self.sha256, str) and bool(_SHA256.match(self.sha256)),
              f"{w}.sha256", "must be 64 lower-case hex digits")
        _need(isinstance(self.bytes, int) and self.bytes > 0, f"{w}.bytes", "must be > 0")
        shape = self.input_shape
        _need(len(shape) == 2 and all(d is None or (isinstance(d, int) and d > 0) for d in shape),
              f"{w}.input_shape", "must be [batch, length] of positive ints or null")
        if self.lengths:
            lengths = self.lengths
            _need(shape[1] is not None, f"{w}.lengths", "needs a fixed input_shape length")
            _need(all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in lengths)
                  and list(lengths) == sorted(set(lengths)), f"{w}.lengths",
                  "must be positive ints in ascending order")
            _need(lengths[-1] == shape[1], f"{w}.lengths",
                  "the longest must equal input_shape's length")

    @property
    def fixed_length(self) -> int | None:
        return self.input_shape[1]


@dataclass(frozen=True)
class TokenizerSpec:
    file: str
    sha256: str
    cls_token: str = "[CLS]"
    sep_token: str = "[SEP]"
    pad_token: str = "[PAD]"
    unk_token: str = "[UNK]"

    def __post_init__(self) -> None:
        check_member_path(self.file, "tokenizer.file")
        _need(bool(_SHA256.match(self.sha256)), "tokenizer.sha256", "must be 64 hex digits")


@dataclass(frozen=True)
class Golden:
    text: str
    label: str
    scores: dict[str, float]


@dataclass(frozen=True)
class Manifest:
    """What a bundle holds and how to run it."""

    name: str
    version: str
    labels: tuple[str, ...]
    max_seq_length: int
    truncation: str
    tokenizer: TokenizerSpec
    artifacts: tuple[Artifact, ...]
    golden: tuple[Golden, ...]
    head_tokens: int = 0
    golden_tolerance: float = 0.1
    model_card: str | None = None
    placeholder: bool = False
    evaluation: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    format_version: int = 1
    calibration: Calibration | None = None

    def __post_init__(self) -> None:
        _need(isinstance(self.name, str) and bool(self.name), "name", "must be a non-empty string")
        parse_semver(self.version)
        _need(len(self.labels) >= 2 and len(set(self.labels)) == len(self.labels),
              "labels", "must list at least two distinct labels")
        _need(isinstance(self.max_seq_length, int) and 8 <= self.max_seq_length <= 4096,
              "max_seq_length", "must be an int in [8, 4096]")
        _need(self.truncation in TRUNCATIONS, "truncation", f"must be one of {TRUNCATIONS}")
        if self.truncation == "head_tail":
            _need(0 < self.head_tokens < self.max_seq_length - 2, "head_tokens",
                  "must be in (0, max_seq_length - 2) for head_tail truncation")
        _need(len(self.artifacts) > 0, "artifacts", "must list at least one model file")
        for i, art in enumerate(self.artifacts):
            fixed = art.fixed_length
            _need(fixed is None or fixed >= self.max_seq_length, f"artifacts[{i}].input_shape",
                  "fixed length must be >= max_seq_length")
        for i, gold in enumerate(self.golden):
            _need(gold.label in self.labels, f"golden[{i}].label", f"{gold.label!r} not in labels")
        _need(0 < self.golden_tolerance <= 1, "golden_tolerance", "must be in (0, 1]")
        if self.model_card is not None:
            check_member_path(self.model_card, "model_card")
        if self.calibration is not None:
            _need(len(self.calibration.bias) in (0, len(self.labels)), "calibration.bias",
                  f"must hold one number per label ({len(self.labels)})")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for art in data["artifacts"]:
            art.pop("where", None)
            art["input_shape"] = list(art["input_shape"])
            if art["lengths"]:
                art["lengths"] = list(art["lengths"])
            else:
                art.pop("lengths")
        data["labels"] = list(self.labels)
        data["format"] = FORMAT
        if self.calibration is None:
            data.pop("calibration")
        else:
            data["calibration"]["bias"] = list(self.calibration.bias)
            if self.calibration.confidence:
                data["calibration"]["confidence"] = list(self.calibration.confidence)
            else:  # a manifest without the map reads as it did before it existed
                data["calibration"].pop("confidence")
        return data


def _get(obj: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise ManifestError(f"{where}{key}: missing")
    value = obj[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ManifestError(f"{where}{key}: wrong type {type(value).__name__}")
    return value


def _artifact(raw: Any, i: int) -> Artifact:
    where = f"artifacts[{i}]"
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: must be an object")
    shape = _get(raw, "input_shape", list, where + ".")
    return Artifact(
        runtime=_get(raw, "runtime", str, where + "."),
        precision=_get(raw, "precision", str, where + "."),
        file=_get(raw, "file", str, where + "."),
        sha256=_get(raw, "sha256", str, where + "."),
        bytes=_get(raw, "bytes", int, where + "."),
        input_shape=tuple(shape),  # type: ignore[arg-type]
        lengths=tuple(_get(raw, "lengths", list, where + ".")) if "lengths" in raw else (),
        where=where,
    )


def _golden(raw: Any, i: int) -> Golden:
    where = f"golden[{i}]."
    if not isinstance(raw, dict):
        raise ManifestError(f"golden[{i}]: must be an object")
    scores = _get(raw, "scores", dict, where)
    for k, v in scores.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or not 0 <= v <= 1:
            raise ManifestError(f"{where}scores.{k}: must be a number in [0, 1], got {v!r}")
    return Golden(_get(raw, "text", str, where), _get(raw, "label", str, where),
                  {str(k): float(v) for k, v in scores.items()})


def _calibration(raw: Any) -> Calibration | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"temperature", "bias", "confidence"}:
        raise ManifestError("calibration: must be an object with temperature, bias and "
                            "confidence")
    bias, confidence = raw.get("bias", []), raw.get("confidence", [])
    if not isinstance(bias, list):
        raise ManifestError("calibration.bias: must be a list of numbers")
    if not isinstance(confidence, list):
        raise ManifestError("calibration.confidence: must be a list of two numbers")
    return Calibration(raw.get("temperature", 1.0), tuple(bias), tuple(confidence))


def parse_manifest(data: Any) -> Manifest:
    """Validate a decoded ``manifest.json`` and return a :class:`Manifest`."""
    if not isinstance(data, dict):
        raise ManifestError("manifest: must be a JSON object")
    if data.get("format") != FORMAT:
        raise ManifestError(f"format: expected {FORMAT!r}, got {data.get('format')!r}")
    version = _get(data, "format_version", int, "")
    if version not in FORMAT_VERSIONS:
        raise ManifestError(f"format_version: {version} is not supported "
                            f"(this edge-sentiment reads {FORMAT_VERSIONS})")
    tok = _get(data, "tokenizer", dict, "")
    unknown = set(tok) - {"file", "sha256", "cls_token", "sep_token", "pad_token", "unk_token"}
    if unknown:
        raise ManifestError(f"tokenizer: unknown keys {sorted(unknown)}")
    tokenizer = TokenizerSpec(**{k: _get(tok, k, str, "tokenizer.") for k in tok})
    artifacts = tuple(_artifact(a, i) for i, a in enumerate(_get(data, "artifacts", list, "")))
    golden = tuple(_golden(g, i) for i, g in enumerate(data.get("golden", [])))
    if len({g.label for g in golden}) < 2:  # a bundle on disk must be self-testable
        raise ManifestError("golden: must hold examples of at least two labels (the load "
                            "self-test)")
    card = data.get("model_card")
    return Manifest(
        name=_get(data, "name", str, ""),
        version=_get(data, "version", str, ""),
        labels=tuple(_get(data, "labels", list, "")),
        max_seq_length=_get(data, "max_seq_length", int, ""),
        truncation=_get(data, "truncation", str, ""),
        head_tokens=int(data.get("head_tokens", 0)),
        tokenizer=tokenizer,
        artifacts=artifacts,
        golden=golden,
        golden_tolerance=float(data.get("golden_tolerance", 0.1)),
        model_card=card if isinstance(card, str) else None,
        placeholder=bool(data.get("placeholder", False)),
        evaluation=dict(data.get("evaluation", {})),
        reference=dict(data.get("reference", {})),
        format_version=version,
        calibration=_calibration(data.get("calibration")),
    )
