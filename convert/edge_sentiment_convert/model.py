"""The student: a small BERT-style encoder written for clean ONNX and TFLite export.

Design choices for edge runtimes:
- an additive attention mask built in the graph (the stock mask adds a GATHER_ND v5 op, which
  tflite-runtime 2.14 rejects);
- GELU: the tanh approximation (the default; bundle 1.1.0 had it) or, with
  ``gelu="exact"`` (bundle 1.2.0), the erf form the teacher has, which ONNX Runtime fuses into
  one Gelu node where the tanh form stays six elementwise nodes per layer (TFLite has a GELU op
  for both);
- an optionally factorised embedding (vocab x rank, then rank -> hidden), because
  the embedding table dominates the size of a small model;
- masked mean pooling and a linear head.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)
GELU_FORMS = {"tanh": "tanh", "exact": "none"}  # config value -> torch's ``approximate``


@dataclass(frozen=True)
class StudentConfig:
    vocab_size: int
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    intermediate: int = 1024
    max_len: int = 128
    emb_rank: int = 0  # 0: no factorisation
    num_labels: int = 3
    head_dim: int = 0  # 0: hidden // heads; set it to keep fewer heads than hidden allows
    gelu: str = "tanh"  # or "exact"

    def __post_init__(self) -> None:
        if self.gelu not in GELU_FORMS:
            raise ValueError(f"gelu must be one of {', '.join(GELU_FORMS)}, not {self.gelu!r}")
        if not self.head_dim and self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} must be a multiple of heads {self.heads}")

    @property
    def attention_width(self) -> int:
        """heads x head_dim: the width of queries, keys and values."""
        return self.heads * (self.head_dim or self.hidden // self.heads)

    def to_json(self) -> dict[str, int]:
        return asdict(self)


class _Layer(nn.Module):
    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.head_dim = cfg.attention_width // cfg.heads
        self.gelu = GELU_FORMS[cfg.gelu]
        self.query = nn.Linear(cfg.hidden, cfg.attention_width)
        self.key = nn.Linear(cfg.hidden, cfg.attention_width)
        self.value = nn.Linear(cfg.hidden, cfg.attention_width)
        self.attn_out = nn.Linear(cfg.attention_width, cfg.hidden)
        self.attn_norm = nn.LayerNorm(cfg.hidden, eps=1e-12)
        self.ff_in = nn.Linear(cfg.hidden, cfg.intermediate)
        self.ff_out = nn.Linear(cfg.intermediate, cfg.hidden)
        self.ff_norm = nn.LayerNorm(cfg.hidden, eps=1e-12)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + additive_mask
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2)
        ctx = ctx.reshape(b, n, self.heads * self.head_dim)
        x = self.attn_norm(x + self.attn_out(ctx))
        ff = self.ff_out(nn.functional.gelu(self.ff_in(x), approximate=self.gelu))
        out: torch.Tensor = self.ff_norm(x + ff)
        return out


class Student(nn.Module):
    """input_ids, attention_mask [batch, length] -> logits [batch, num_labels]."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        width = cfg.emb_rank or cfg.hidden
        self.word = nn.Embedding(cfg.vocab_size, width)
        self.proj = nn.Linear(width, cfg.hidden, bias=False) if cfg.emb_rank else None
        self.position = nn.Embedding(cfg.max_len, cfg.hidden)
        self.emb_norm = nn.LayerNorm(cfg.hidden, eps=1e-12)
        self.layers = nn.ModuleList(_Layer(cfg) for _ in range(cfg.layers))
        self.head = nn.Linear(cfg.hidden, cfg.num_labels)

    @property
    def feature_width(self) -> int:
        return self.cfg.hidden

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.features(input_ids, attention_mask))
        return logits

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The pooled vector the head reads (feature distillation matches it to the teacher's)."""
        x = self.word(input_ids)
        if self.proj is not None:
            x = self.proj(x)
        positions = self.position.weight[: input_ids.shape[1]].unsqueeze(0)
        x = self.emb_norm(x + positions)
        mask = attention_mask.to(x.dtype)
        additive = (1.0 - mask[:, None, None, :]) * -10000.0
        for layer in self.layers:
            x = layer(x, additive)
        pooled: torch.Tensor = (x * mask[:, :, None]).sum(dim=1) / \
            mask.sum(dim=1, keepdim=True).clamp(min=1.0)
        return pooled


def teacher_token_table(bert: Any, keep_ids: Sequence[int | list[int]] | None = None
                        ) -> torch.Tensor:
    """The teacher's token embeddings (rows ``keep_ids`` of a pruned vocabulary; an entry that
    is a list of ids is their mean, for a token the teacher lacks) plus its token-type-0
    embedding, which every single-segment input adds."""
    emb = bert.embeddings
    table = emb.word_embeddings.weight.detach()
    if keep_ids is not None:
        table = torch.stack([table[k].mean(0) if isinstance(k, list) else table[k]
                             for k in keep_ids])
    out: torch.Tensor = table + emb.token_type_embeddings.weight[0].detach()
    return out


def init_from_teacher(student: Student, bert: Any,
                      keep_ids: Sequence[int | list[int]] | None = None) -> None:
    """Copy what fits from a HF ``BertModel``: embeddings (SVD-factorised when the
    student uses a rank), positions and, when the hidden width and head size match, evenly
    spaced layers (pruned to the student's heads and feed-forward width)."""
    cfg = student.cfg
    emb = bert.embeddings
    with torch.no_grad():
        table = teacher_token_table(bert, keep_ids)
        if table.shape[1] == cfg.hidden and not cfg.emb_rank:
            student.word.weight.copy_(table)
        elif cfg.emb_rank and table.shape[1] == cfg.hidden and student.proj is not None:
            u, s, vh = torch.linalg.svd(table, full_matrices=False)
            r = cfg.emb_rank
            student.word.weight.copy_(u[:, :r] * s[:r])
            student.proj.weight.copy_(vh[:r].T)
        if emb.position_embeddings.weight.shape[1] == cfg.hidden:
            student.position.weight.copy_(emb.position_embeddings.weight[: cfg.max_len])
            student.emb_norm.load_state_dict(emb.LayerNorm.state_dict())
        teacher_layers = bert.encoder.layer
        if not fits_teacher(cfg, bert.config):
            log.info("student layers start from random weights: they do not fit in the teacher's")
            return
        step = max(1, len(teacher_layers) // cfg.layers)
        for mine, theirs in zip(student.layers, list(teacher_layers)[step - 1 :: step]):
            assert isinstance(mine, _Layer)
            _copy_layer(mine, theirs)


def fits_teacher(cfg: StudentConfig, bcfg: Any) -> bool:
    """Whether the teacher's layers (HF config ``bcfg``) can be copied, pruned, into layers of
    shape ``cfg``: the same width and head size, no more heads or feed-forward neurons."""
    return bool((bcfg.hidden_size, bcfg.hidden_size // bcfg.num_attention_heads) ==
                (cfg.hidden, cfg.attention_width // cfg.heads)
                and cfg.heads <= bcfg.num_attention_heads
                and cfg.intermediate <= bcfg.intermediate_size)


def _copy_layer(mine: _Layer, theirs: Any) -> None:
    """Copy a teacher layer; a student with fewer heads or a narrower feed-forward keeps the
    teacher's heads and neurons with the largest weight norms (structured pruning)."""
    att = theirs.attention
    ff_in, ff_out = theirs.intermediate.dense, theirs.output.dense
    heads = _top_heads(att.self.value.weight, att.output.dense.weight, mine.heads, mine.head_dim)
    neurons = _top_units(ff_in.weight, ff_out.weight, mine.ff_in.out_features)
    for dst, src in ((mine.query, att.self.query), (mine.key, att.self.key),
                     (mine.value, att.self.value)):
        _copy_linear(dst, src, rows=heads)
    _copy_linear(mine.attn_out, att.output.dense, cols=heads)
    _copy_linear(mine.ff_in, ff_in, rows=neurons)
    _copy_linear(mine.ff_out, ff_out, cols=neurons)
    mine.attn_norm.load_state_dict(att.output.LayerNorm.state_dict())
    mine.ff_norm.load_state_dict(theirs.output.LayerNorm.state_dict())


def _top_units(w_in: torch.Tensor, w_out: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices (in order) of the ``keep`` units with the largest ||w_in row|| * ||w_out col||."""
    score = w_in.norm(dim=1) * w_out.norm(dim=0)
    return torch.sort(torch.topk(score, keep).indices).values


def _top_heads(w_value: torch.Tensor, w_out: torch.Tensor, keep: int, head_dim: int
               ) -> torch.Tensor:
    """Row indices of the ``keep`` heads with the largest value/output weight norms."""
    n = w_value.shape[0] // head_dim
    v = w_value.reshape(n, head_dim, -1).flatten(1).norm(dim=1)
    o = w_out.reshape(w_out.shape[0], n, head_dim).transpose(0, 1).flatten(1).norm(dim=1)
    chosen = torch.sort(torch.topk(v * o, keep).indices).values
    return (chosen[:, None] * head_dim + torch.arange(head_dim)).flatten()


def _copy_linear(dst: nn.Linear, src: nn.Linear, rows: torch.Tensor | None = None,
                 cols: torch.Tensor | None = None) -> None:
    w: torch.Tensor = src.weight
    b: torch.Tensor = src.bias
    if rows is not None:
        w, b = w[rows], b[rows]
    if cols is not None:
        w = w[:, cols]
    dst.weight.copy_(w)
    dst.bias.copy_(b)
