"""``[finetune]``: a built student trained on a little more, without its teacher, by
``edge-sentiment-convert rebundle``.

The rows are the build's student rows (``transfer.distill_rows``: the transfer set, its augmented,
emoji, negated and contrast copies, identity counterfactuals) with the student's *own* logits
as soft targets, so what it knows stays (self-distillation), plus the negation rule on short
texts: a negated copy (``compose.negation``, a negation added) of a transfer text of at most
``max_words`` words that the student reads as negative, where it reads the copy as negative too,
learns ``negation_target`` instead ("was not bad" is no complaint), ``repeat`` times over.

Why short texts only: in a long review or tweet the complaint usually sits outside the copula
that the copy negates ("... is not all you do.. I've never experienced worse service"), so the
build's rule, which takes every negated copy, teaches "not" as a neutral cue. Measured on
2.0.0's weights (``experiments/finetune_negation.py``): the rule on every copy took negated
negatives from 37% to 23.5% failing but typos from 16.9% to 29.2% and added handles from 2.8% to
9.4%; on texts of up to 12 words it took them to 28.5% and left every robustness test within a
case or two.

``typos``: that many misspelt copies of transfer texts (``augment.typo_copies``), each learning
the student's own logits for the clean text, so a typing error does not move the label.
Measured on 2.6.0: self-distillation plus the negation rule took the typos test from 16.9% of
cases changing label (2.0.1) to 21.9%; the rule teaches short texts, where a misspelt word is a
large share of what the model reads. 60,000 copies on that recipe (trial 2.7.0,
``experiments/cards/candidate-2.7.0.md``) took typos to 19.7% but negated negatives from 10.5%
to 16%, so the default config leaves them out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .augment import typo_copies
from .compose import is_target, target_logits
from .rules import negated_positives, rating_texts, short_negated

if TYPE_CHECKING:
    from .config import BuildConfig
    from .data import Example
    from .students import StudentModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneCfg:
    """Read by ``rebundle`` only (a build trains its students from the teacher)."""

    epochs: float = 0.0  # 0: no fine-tuning
    lr: float = 1e-4
    batch: int = 32
    # (negative, neutral, positive) for a short negated complaint; [] : self-distillation only
    negation_target: list[float] = field(default_factory=list)
    max_words: int = 12
    repeat: int = 1
    typos: int = 0  # misspelt copies learning the clean text's own logits; 0: none
    # (negative, neutral, positive) for a short negated praise (rules.negated_positives); []: none
    positive_target: list[float] = field(default_factory=list)
    ratings: int = 0  # star ratings learning rules.RATING_TARGETS; 0: none

    def problems(self) -> list[str]:
        """What is wrong with these settings (empty: nothing)."""
        out = []
        if not _number(self.epochs) or self.epochs < 0:
            out.append("epochs must be a number >= 0")
        if not _number(self.lr) or self.lr <= 0:
            out.append("lr must be a number > 0")
        for key in ("batch", "max_words", "repeat"):
            value = getattr(self, key)
            if not _number(value) or not isinstance(value, int) or value < 1:
                out.append(f"{key} must be a whole number >= 1")
        for key in ("typos", "ratings"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                out.append(f"{key} must be a whole number >= 0")
        for key in ("negation_target", "positive_target"):
            if not is_target(getattr(self, key)):
                out.append(f"{key} must be empty or three probabilities > 0 that sum to 1")
        return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def short_negations(texts: list[str], logits: np.ndarray, max_words: int) -> list[str]:
    """Negated copies (a negation added) of the texts of at most ``max_words`` words whose
    ``logits`` say negative, without repeats, sorted."""
    return short_negated(texts, logits, max_words, 0)


def finetune(model: StudentModel, cfg: BuildConfig, data: Path, transfer: list[Example],
             tokenizer: Path, max_len: int) -> dict[str, Any]:
    """Train ``model`` (a recovered student) in place as ``cfg.finetune`` says, on the build's
    ``transfer`` set (``data.transfer_rows``); what the card reports about it."""
    from .data import binary_sources
    from .distill import distill
    from .teacher import load_tokenizer, predict_logits
    from .transfer import distill_rows, labelled_texts

    f = cfg.finetune
    d = replace(cfg.distill_for(cfg.students[0]), negation_target=[])
    texts = [e.text for e in transfer]
    every = labelled_texts(texts, cfg.distill, cfg.seed)
    tok = load_tokenizer(tokenizer, max_len)
    own = predict_logits(model, tok, every, batch=256, desc="own logits")
    rows = distill_rows(transfer, binary_sources(data, cfg.teacher.sources), d,
                        cfg.distill.augment, cfg.seed, own, None)

    def rule(rows: Any, copies: list[str], still_negative: bool,
             target: list[float]) -> tuple[Any, list[str]]:
        """``rows`` with the ``copies`` the student reads as negative (``still_negative``) or
        not, each learning ``target`` ``f.repeat`` times; and the copies kept."""
        read = predict_logits(model, tok, copies, batch=256, progress=False)
        kept = [t for t, z in zip(copies, read) if (int(np.argmax(z)) == 0) == still_negative]
        extra = kept * f.repeat
        return _extended(rows, extra, np.tile(target_logits(target, d.temperature),
                                              (len(extra), 1))), kept

    read = own[:len(texts)]  # the transfer texts themselves, before their augmented copies
    ruled: list[str] = []
    if f.negation_target:
        rows, ruled = rule(rows, short_negations(texts, read, f.max_words), True,
                           f.negation_target)
    praised: list[str] = []
    if f.positive_target:
        rows, praised = rule(rows, negated_positives(texts, read, f.max_words), False,
                             f.positive_target)
    rated, targets = rating_texts(texts, read, f.ratings, f.max_words, cfg.seed)
    if rated:
        rows = _extended(rows, rated, target_logits(targets, d.temperature))
    typos = typo_copies(texts, f.typos, cfg.seed)
    if typos:
        rows = _extended(rows, [t for _, t in typos], own[[i for i, _ in typos]])
    seconds = distill(model, tok, rows.texts, rows.hard, rows.binary,
                      rows.logits.astype(np.float32), epochs=f.epochs, batch=f.batch, lr=f.lr,
                      temperature=d.temperature, alpha=1.0, seed=cfg.seed, desc="finetune")
    log.info("fine-tuned on %d rows (%d short negated complaints, %d negated praises, %d "
             "ratings, %d misspelt copies) in %.0f s", len(rows.texts), len(ruled), len(praised),
             len(rated), len(typos), seconds)
    return {"epochs": f.epochs, "lr": f.lr, "rows": len(rows.texts), "ruled": len(ruled),
            "repeat": f.repeat, "max_words": f.max_words,
            "negation_target": list(f.negation_target), "typos": len(typos),
            "praised": len(praised), "positive_target": list(f.positive_target),
            "ratings": len(rated), "minutes": round(seconds / 60, 1)}


def _extended(rows: Any, texts: list[str], logits: np.ndarray) -> Any:
    """``rows`` (a ``transfer.DistillSet``) with unlabelled 3-class ``texts`` learning ``logits``."""
    return replace(rows, texts=rows.texts + texts, hard=rows.hard + [-1] * len(texts),
                   binary=rows.binary + [False] * len(texts),
                   logits=np.concatenate([rows.logits, logits]))
