"""Build configuration: a TOML file, validated before any work, unknown keys refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from edge_sentiment.errors import ConfigError
from edge_sentiment.manifest import parse_semver
from edge_sentiment.tomlfile import read_toml

from .compose import is_target
from .finetune import FinetuneCfg
from .identity import blind_words

STAGES = ("teacher", "validate", "soft_labels", "vocab", "teacher_onnx", "teacher_dev", "student",
          "final", "finish", "table")


def at(*stages: str, default: Any = MISSING, factory: Any = MISSING) -> Any:
    """A config field, with the build stages that first read it (``stages.py``: a change reruns
    them and every stage after them; ``finish`` is never cached; ``table`` holds other fields)."""
    assert stages and set(stages) <= set(STAGES), stages
    if factory is not MISSING:
        return field(default_factory=factory, metadata={"stages": stages})
    return field(default=default, metadata={"stages": stages})


@dataclass(frozen=True)
class TeacherCfg:
    sources: dict[str, float] = at("teacher")
    epochs: float = at("teacher", default=1.0)
    batch: int = at("teacher", default=32)
    lr: float = at("teacher", default=5e-5)
    max_examples: int = at("teacher", default=0)  # 0: no cap
    # Emoji spelled out as their names in the teacher's tokenizer (convert/emoji_tokens.py), and
    # one token each in the student's.
    emoji: bool = at("teacher", default=False)
    # Identity-term counterfactual copies of each train text that names a group
    # (convert/identity.py), with the original's label.
    counterfactual: int = at("teacher", default=0)
    # ``build --from EARLIER`` (an earlier build's folder): "continue" starts from its fine-tuned
    # teacher and fine-tunes that on these sources for ``epochs``; "as_is" takes it unchanged;
    # "never" refuses --from.
    reuse: str = at("teacher", default="never")


TEACHER_REUSE = ("never", "continue", "as_is")


@dataclass(frozen=True)
class DistillCfg:
    unlabeled: int = at("validate", "soft_labels", "vocab", default=0)
    epochs: float = at("student", default=2.0)
    batch: int = at("student", default=64)
    lr: float = at("student", default=5e-4)
    temperature: float = at("student", default=2.0)
    alpha: float = at("student", default=0.7)  # weight of the soft (teacher) loss
    # Perturbed copies of each transfer text the teacher labels (convert/augment.py); a student
    # trains on all of them unless its own ``distill = { augment = k }`` asks for fewer.
    augment: int = at("soft_labels", default=0)
    # Weight of the feature-distillation loss (convert/distill.py): 1 - cosine between the
    # student's pooled vector (linearly mapped) and the teacher's sentence embedding. 0: off.
    features: float = at("student", default=0.0)
    # The student's transfer-set weight per source, as [teacher] sources weigh the teacher's
    # train set (2.0: every row and its augmented copies twice; 0.5: a half sample; 0: none).
    # "unlabeled" names the unlabeled text; a source not named weighs 1.0. It reuses the
    # teacher's soft labels, so it changes only the students.
    source_weights: dict[str, float] = at("student", factory=dict)
    # The student's random start and batch order (0: the build's seed), so one build can train
    # one recipe on several seeds and see its scatter.
    seed: int = at("student", default=0)
    # Transfer texts with an emoji put in (convert/emoji_tokens.emoji_texts), labelled by the
    # teacher; needs [teacher] emoji.
    emoji_copies: int = at("soft_labels", default=0)
    # Identity-term counterfactual copies of the transfer texts, with the original's soft label.
    counterfactual: int = at("student", default=0)
    # Negated and contrast copies of transfer texts (convert/compose.py), labelled by the teacher.
    negation_copies: int = at("soft_labels", default=0)
    contrast_copies: int = at("soft_labels", default=0)
    # Probabilities (negative, neutral, positive) a student learns for a negated copy of a text
    # the teacher reads as negative, where the teacher reads the copy as negative too
    # (convert/compose.py negation_rule); empty: the teacher's label everywhere.
    negation_target: list[float] = at("student", factory=list)


@dataclass(frozen=True)
class VocabCfg:
    min_count: int = at("vocab", default=3)
    max_size: int = at("vocab", default=16000)
    # Keep the identity words of convert/identity.py whole, whatever their count.
    keep_identity: bool = at("vocab", default=False)
    # Read every identity word (convert/identity.py blind_words) as one token in the student.
    blind_identity: bool = at("vocab", default=False)
    # Words of blind_words to leave as they are (everyday words such as "man" or "guy").
    blind_except: list[str] = at("vocab", factory=list)


STUDENT_ARCHS = ("transformer", "cnn")
TRANSFORMER_ONLY = ("heads", "intermediate", "head_dim", "gelu")


@dataclass(frozen=True)
class StudentCfg:
    name: str = at("student")
    layers: int = at("student")
    hidden: int = at("student")
    heads: int = at("student", default=0)  # transformer only (required there)
    intermediate: int = at("student", default=0)  # transformer only (required there)
    emb_rank: int = at("student", default=0)  # cnn: required (its embedding is always factorised)
    arch: str = at("student", default="transformer")  # or "cnn" (convert/cnn.py)
    kernel: int = at("student", default=0)  # cnn only: odd convolution width (0: 3)
    # cnn only: self-attention layers on top of the convolutions (these need heads and
    # intermediate; they start from the teacher's last layers)
    attention: int = at("student", default=0)
    init_from_teacher: bool = at("student", default=True)
    # 0: hidden // heads; 32 with fewer than hidden / 32 heads prunes heads
    head_dim: int = at("student", default=0)
    # or "exact" (the teacher's erf form; one fused node in ONNX Runtime)
    gelu: str = at("student", default="tanh")
    # This candidate's own distillation settings over [distill] (epochs, batch, lr, temperature,
    # alpha), so one build can compare recipes as well as shapes on the same teacher.
    distill: dict[str, Any] = at("student", factory=dict)


TFLITE_SCHEMES = ("dynamic_tensorwise", "weight_only")  # int8 compute first: the faster one
TFLITE_QUANT_MODES = (*TFLITE_SCHEMES, "auto")
# The shipped ONNX student's int8 scheme: "dynamic" (activation scales per call, so scores
# move a little with a text's batch neighbours) or "static" (scales fitted once on
# calibration texts: the same scores alone or in any batch).
ONNX_QUANT_MODES = ("dynamic", "static")
# The shipped ONNX CNN student's graph: "slices" (each convolution as Pad, Slices, Concat and one
# MatMul, as trained), "conv" (the same weights as one Conv node per layer, opset 20 so the
# exact GELU fuses: fewer nodes per call) or "fused" (conv, then every int8 weight product giving
# float, convolutions as uint8 taps and one product: int8_graph.py). conv and fused: static only.
ONNX_GRAPHS = ("slices", "conv", "fused")


@dataclass(frozen=True)
class BuildConfig:
    name: str = at("finish")
    version: str = at("finish")
    teacher: TeacherCfg = at("table")
    students: tuple[StudentCfg, ...] = at("table")
    distill: DistillCfg = at("table", factory=DistillCfg)
    vocab: VocabCfg = at("table", factory=VocabCfg)
    # Read by rebundle only: the built student trained a little more (convert/finetune.py).
    finetune: FinetuneCfg = at("table", factory=FinetuneCfg)
    seed: int = at("teacher", default=13)
    max_seq_length: int = at("teacher", default=128)
    # or weight_only, or auto (best dev agreement)
    tflite_quant: str = at("final", default="dynamic_tensorwise")
    # One TFLite signature per fixed length (ascending, the last max_seq_length), weights shared:
    # the runtime runs each text in the shortest that holds it. (): one [1, max_seq_length] graph.
    tflite_lengths: tuple[int, ...] = at("final", default=())
    # False: per-tensor int8 weights, as TFLite TENSORWISE has
    onnx_per_channel: bool = at("student", default=True)
    onnx_quant: str = at("final", default="dynamic")  # one of ONNX_QUANT_MODES
    onnx_graph: str = at("final", default="slices")  # one of ONNX_GRAPHS
    # After training, the bundle's tokenizer reads every identity word (identity.blind_words)
    # as this word of the student's vocabulary ("": no blinding after training).
    identity_anchor: str = at("final", default="")
    max_onnx_mb: float = at("final", default=8.0)
    golden_per_label: int = at("finish", default=4)
    eval_limit: int = at("teacher_onnx", default=0)  # 0: every row of every dev/test split
    # The chosen student: the fastest whose mean dev macro-F1 is at most this many points behind
    # the teacher fp32's (0, or none that close: the best candidate on dev).
    max_dev_gap: float = at("final", default=0.0)
    # the sources max_dev_gap looks at (default: every source)
    gap_sources: tuple[str, ...] = at("final", default=())
    speed_runs: int = at("student", default=300)
    # The source whose dev texts the speed stage also times (real lengths; the bench's built-in
    # samples are short). "": the first gap source, else the first [teacher] source.
    speed_texts: str = at("final", default="")
    # A bundle the speed stage times beside the student ("packaged": the default bundle installed
    # when the build ran; "": none), so a new default's latency is compared in the same run.
    speed_baseline: str = at("final", default="")
    # Fit temperature and per-class biases on pooled dev (convert/calibrate.py).
    calibrate: bool = at("final", default=False)
    # With calibrate: also fit the confidence map (slope, offset on the winner's log-odds).
    confidence_map: bool = at("final", default=False)
    # With confidence_map: the map holds each dev source's ECE (student ONNX) at or below this
    # where it can (0: no ceiling); below the card's max_dev_ece, a margin for TFLite.
    confidence_max_ece: float = at("final", default=0.0)
    # Read by rebundle only (the build makes TFLite after calibrating): fit the calibration on
    # the new TFLite files' dev outputs as well as the ONNX file's, so its floors and ECE
    # ceiling hold on both runtimes.
    calibrate_tflite: bool = at("final", default=False)
    # With calibrate: the student's biases hold the card's decision targets on dev where they
    # can (each gap source's neutral recall, its gap to the teacher, [targets] min_sst2_dev),
    # the mean dev score choosing among the biases that do (calibrate.Floors, weight 100).
    fit_to_targets: bool = at("final", default=False)
    min_neutral_recall: float = at("final", default=0.0)  # the bias fit's floor for each 3-class dev source
    # Targets the card checks the build against (name -> number); none: the card lists none.
    targets: dict[str, float] = at("finish", factory=dict)

    @property
    def conv_form(self) -> bool:
        """The static ONNX starts from the export with one Conv node per layer."""
        return self.onnx_graph in ("conv", "fused")

    def distill_for(self, student: StudentCfg) -> DistillCfg:
        """[distill] with the student's own overrides applied."""
        return replace(self.distill, **student.distill)


STUDENT_DISTILL_KEYS = ("epochs", "batch", "lr", "temperature", "alpha", "augment",
                        "features", "source_weights", "seed")
_NOT_POSITIVE = ("augment", "features", "source_weights", "seed")  # checked on their own


def _whole(value: Any) -> bool:
    """A whole number >= 0 (TOML's true and false are not numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a table")
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def parse_config(data: dict[str, Any], source: str) -> BuildConfig:
    raw = dict(data)
    try:
        teacher = _build(TeacherCfg, raw.pop("teacher", None), f"{source} [teacher]")
        students = tuple(_build(StudentCfg, s, f"{source} [[students]][{i}]")
                         for i, s in enumerate(raw.pop("students", [])))
        distill = _build(DistillCfg, raw.pop("distill", {}), f"{source} [distill]")
        vocab = _build(VocabCfg, raw.pop("vocab", {}), f"{source} [vocab]")
        finetune = _build(FinetuneCfg, raw.pop("finetune", {}), f"{source} [finetune]")
        cfg: BuildConfig = _build(BuildConfig, {**raw, "teacher": teacher, "students": students,
                                                "distill": distill, "vocab": vocab,
                                                "finetune": finetune,
                                                "gap_sources": tuple(raw.get("gap_sources", ())),
                                                "tflite_lengths": tuple(raw.get("tflite_lengths",
                                                                                ()))},
                                  source)
    except ConfigError:
        raise
    _check(cfg, source)
    return cfg


def _check(cfg: BuildConfig, source: str) -> None:
    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ConfigError(f"{source}: {what}")
    parse_semver(cfg.version)
    need(bool(cfg.students), "at least one [[students]] entry is required")
    need(bool(cfg.teacher.sources), "[teacher] sources must name at least one data source")
    need(all(w > 0 for w in cfg.teacher.sources.values()), "[teacher] source weights must be > 0")
    need(0 <= cfg.distill.alpha <= 1, "[distill] alpha must be in [0, 1]")
    need(isinstance(cfg.distill.augment, int) and cfg.distill.augment >= 0,
         "[distill] augment must be a whole number >= 0")
    need(isinstance(cfg.distill.features, (int, float)) and cfg.distill.features >= 0,
         "[distill] features must be a number >= 0")
    need(_whole(cfg.distill.seed), "[distill] seed must be a whole number >= 0")
    need(is_target(cfg.distill.negation_target),
         "[distill] negation_target must be empty or three probabilities > 0 that sum to 1")
    for problem in cfg.finetune.problems():
        need(False, f"[finetune] {problem}")
    for key, value in (("[teacher] counterfactual", cfg.teacher.counterfactual),
                       ("[distill] counterfactual", cfg.distill.counterfactual),
                       ("[distill] emoji_copies", cfg.distill.emoji_copies),
                       ("[distill] negation_copies", cfg.distill.negation_copies),
                       ("[distill] contrast_copies", cfg.distill.contrast_copies)):
        need(_whole(value), f"{key} must be a whole number >= 0")
    need(isinstance(cfg.teacher.emoji, bool), "[teacher] emoji must be true or false")
    need(cfg.teacher.reuse in TEACHER_REUSE,
         f"[teacher] reuse must be one of {', '.join(TEACHER_REUSE)}")
    need(isinstance(cfg.vocab.keep_identity, bool), "[vocab] keep_identity must be true or false")
    _check_blind_except(cfg.vocab, need)
    need(not cfg.distill.emoji_copies or cfg.teacher.emoji,
         "[distill] emoji_copies needs [teacher] emoji = true (the teacher reads their names)")
    _check_source_weights(cfg, cfg.distill.source_weights, "[distill] source_weights", need)
    need(isinstance(cfg.confidence_max_ece, (int, float)) and not isinstance(
        cfg.confidence_max_ece, bool) and 0 <= cfg.confidence_max_ece < 1,
         "confidence_max_ece must be a number in [0, 1)")
    need(isinstance(cfg.calibrate_tflite, bool), "calibrate_tflite must be true or false")
    need(cfg.onnx_quant in ONNX_QUANT_MODES,
         f"onnx_quant must be one of {', '.join(ONNX_QUANT_MODES)}")
    need(not cfg.identity_anchor or (cfg.identity_anchor.isalpha()
                                     and cfg.identity_anchor.islower()),
         "identity_anchor must be one lower-case word")
    need(not (cfg.identity_anchor and cfg.vocab.blind_identity),
         "identity_anchor and [vocab] blind_identity exclude each other (the student already "
         "reads identity words as one token)")
    need(cfg.onnx_graph in ONNX_GRAPHS, f"onnx_graph must be one of {', '.join(ONNX_GRAPHS)}")
    need(cfg.onnx_graph == "slices" or cfg.onnx_quant == "static",
         f'onnx_graph = "{cfg.onnx_graph}" needs onnx_quant = "static"')
    lengths = cfg.tflite_lengths
    need(not lengths or (all(_whole(n) and n > 0 for n in lengths)
                         and list(lengths) == sorted(set(lengths))
                         and lengths[-1] == cfg.max_seq_length),
         "tflite_lengths must be positive whole numbers in ascending order, the last "
         "max_seq_length")
    need(cfg.tflite_quant in TFLITE_QUANT_MODES,
         f"tflite_quant must be one of {', '.join(TFLITE_QUANT_MODES)}")
    need(not cfg.speed_texts or cfg.speed_texts in cfg.teacher.sources,
         f"speed_texts {cfg.speed_texts!r} is not a [teacher] source")
    unknown = sorted(set(cfg.gap_sources) - set(cfg.teacher.sources))
    need(not unknown, f"gap_sources {unknown} are not [teacher] sources")
    for s in cfg.students:
        need(s.arch in STUDENT_ARCHS, f"student {s.name}: arch must be one of "
                                      f"{', '.join(STUDENT_ARCHS)}, not {s.arch!r}")
        need(s.layers > 0 and s.hidden > 0, f"student {s.name}: layers and hidden must be > 0")
        _check_student_distill(cfg, s, need)
        if s.arch == "cnn":
            _check_cnn(s, need)
        else:
            _check_transformer(s, need)
    names = [s.name for s in cfg.students]
    need(len(set(names)) == len(names), "student names must be unique")


def _check_transformer(s: StudentCfg, need: Callable[[bool, str], None]) -> None:
    need(s.heads > 0 and s.intermediate > 0,
         f"student {s.name}: a transformer needs heads and intermediate > 0")
    need(s.gelu in ("tanh", "exact"), f"student {s.name}: gelu must be tanh or exact")
    need(s.head_dim > 0 or s.hidden % s.heads == 0,
         f"student {s.name}: hidden must be a multiple of heads (or set head_dim)")
    need(s.kernel == 0, f"student {s.name}: kernel is for arch = \"cnn\" only")
    need(s.attention == 0, f"student {s.name}: attention is for arch = \"cnn\" only (a "
                           "transformer's layers are all attention layers)")


def _check_cnn(s: StudentCfg, need: Callable[[bool, str], None]) -> None:
    defaults = {f.name: f.default for f in fields(StudentCfg)}
    need(_whole(s.attention), f"student {s.name}: attention must be a whole number >= 0")
    allowed = ("heads", "intermediate") if s.attention else ()
    set_here = [k for k in TRANSFORMER_ONLY if getattr(s, k) != defaults[k] and k not in allowed]
    need(not set_here, f"student {s.name}: {', '.join(set_here)} apply to transformers only "
                       "(a cnn takes heads and intermediate with attention > 0)")
    if s.attention:
        need(s.heads > 0 and s.intermediate > 0 and s.hidden % s.heads == 0,
             f"student {s.name}: attention layers need heads > 0 dividing hidden and "
             "intermediate > 0")
    need(s.emb_rank > 0, f"student {s.name}: a cnn needs emb_rank > 0")
    need(s.kernel == 0 or (s.kernel > 0 and s.kernel % 2 == 1),
         f"student {s.name}: kernel must be an odd number")


def _check_student_distill(cfg: BuildConfig, s: StudentCfg,
                           need: Callable[[bool, str], None]) -> None:
    need(isinstance(s.distill, dict), f"student {s.name}: distill must be a table")
    bad = sorted(set(s.distill) - set(STUDENT_DISTILL_KEYS))
    need(not bad, f"student {s.name}: distill may only set {', '.join(STUDENT_DISTILL_KEYS)}, "
                  f"not {bad}")
    need(all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
             for k, v in s.distill.items() if k not in _NOT_POSITIVE),
         f"student {s.name}: distill values must be numbers > 0")
    feat = s.distill.get("features", cfg.distill.features)
    need(isinstance(feat, (int, float)) and not isinstance(feat, bool) and feat >= 0,
         f"student {s.name}: distill features must be a number >= 0")
    need(cfg.distill_for(s).alpha <= 1, f"student {s.name}: distill alpha must be in [0, 1]")
    _check_source_weights(cfg, s.distill.get("source_weights", {}),
                          f"student {s.name}: distill source_weights", need)
    seed = s.distill.get("seed", 0)
    need(_whole(seed), f"student {s.name}: distill seed must be a whole number >= 0")
    mine = s.distill.get("augment", cfg.distill.augment)
    need(_whole(mine) and mine <= cfg.distill.augment,
         f"student {s.name}: distill augment must be a whole number from 0 to [distill] augment "
         f"({cfg.distill.augment})")


def _check_source_weights(cfg: BuildConfig, weights: Any, where: str,
                          need: Callable[[bool, str], None]) -> None:
    need(isinstance(weights, dict), f"{where} must be a table of source = weight")
    known = {*cfg.teacher.sources, "unlabeled"}
    unknown = sorted(set(weights) - known)
    need(not unknown, f"{where}: {unknown} are not [teacher] sources (or \"unlabeled\")")
    need(all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0
             for w in weights.values()), f"{where}: weights must be numbers >= 0")
    present = {*cfg.teacher.sources, *(["unlabeled"] if cfg.distill.unlabeled else [])}
    need(any(weights.get(src, 1.0) > 0 for src in present),
         f"{where}: every source in the transfer set weighs 0")


def load_config(path: Path) -> BuildConfig:
    return parse_config(read_toml(path), path.name)


def _check_blind_except(vocab: VocabCfg, need: Callable[[bool, str], None]) -> None:
    words = vocab.blind_except
    need(isinstance(words, list) and all(isinstance(w, str) for w in words),
         "[vocab] blind_except must be a list of words")
    unknown = sorted(set(words) - set(blind_words()))
    need(not unknown, f"[vocab] blind_except: {unknown} are not blinded words")
    need(not words or vocab.blind_identity, "[vocab] blind_except needs blind_identity = true")
