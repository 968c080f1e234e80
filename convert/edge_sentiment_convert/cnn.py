"""A convolutional student: far fewer graph nodes and multiply-accumulates than a transformer
layer, for the speed targets (one text at a time, where per-node overhead dominates).

Design choices for edge runtimes:
- each convolution is written as shifted copies of the sequence, concatenated and sent through
  one ``nn.Linear`` (kernel x hidden -> hidden): ONNX Runtime's dynamic int8 quantizes it as a
  MatMul (a ``Conv`` would stay fp32), and TFLite gets a FULLY_CONNECTED op;
- dilations 1, 2, 4, ... widen the context with each layer (15 tokens after three layers of
  kernel 3), residual connections and a LayerNorm after each;
- padded positions are zeroed before every layer and left out of pooling, so a text padded to
  TFLite's fixed length scores as it does unpadded in ONNX;
- optionally (``attention = n``) n self-attention layers on top of the convolutions, the
  transformer student's layer (additive mask, exact GELU), for context wider than the
  convolutions reach; they start from the teacher's last layers, pruned to ``intermediate``;
- masked max and mean pooling, concatenated, then a linear head;
- the embedding is factorised (vocab x rank, then rank -> hidden) and starts from the teacher's
  token embeddings (SVD), as the transformer student's does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .model import StudentConfig, _copy_layer, _Layer, fits_teacher, teacher_token_table


@dataclass(frozen=True)
class ConvConfig:
    vocab_size: int
    hidden: int = 384
    layers: int = 3
    kernel: int = 3
    emb_rank: int = 128
    max_len: int = 128
    num_labels: int = 3
    attention: int = 0  # self-attention layers on top of the convolutions
    heads: int = 12  # of each attention layer
    intermediate: int = 768  # feed-forward width of each attention layer

    def __post_init__(self) -> None:
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be an odd number >= 1, not {self.kernel}")
        if self.layers < 1 or self.hidden < 1 or self.emb_rank < 1:
            raise ValueError("layers, hidden and emb_rank must be >= 1")
        if self.attention < 0:
            raise ValueError(f"attention must be >= 0, not {self.attention}")
        if self.attention and (self.heads < 1 or self.intermediate < 1
                               or self.hidden % self.heads):
            raise ValueError(f"attention layers need heads >= 1 dividing hidden {self.hidden} "
                             f"and intermediate >= 1 (heads {self.heads}, "
                             f"intermediate {self.intermediate})")

    def attention_config(self) -> StudentConfig:
        """The shape of the attention layers, as the transformer student describes one."""
        return StudentConfig(vocab_size=self.vocab_size, hidden=self.hidden, layers=self.attention,
                             heads=self.heads, intermediate=self.intermediate,
                             max_len=self.max_len, gelu="exact")

    def dilation(self, layer: int) -> int:
        return int(2 ** layer)

    def to_json(self) -> dict[str, int]:
        return asdict(self)


class ConvLayer(nn.Module):
    def __init__(self, hidden: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.mix = nn.Linear(kernel * hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.as_conv = False  # export form: one Conv node instead of Pad, Slices and Concat

    def _conv(self, x: torch.Tensor, reach: int) -> torch.Tensor:
        """The same convolution as one ``conv1d``: ``mix``'s weight, [out, kernel * in], read as
        [out, in, kernel] (tap k of the concatenation is input position t + k * dilation)."""
        out, width = self.mix.weight.shape
        weight = self.mix.weight.view(out, self.kernel, width // self.kernel).permute(0, 2, 1)
        y = nn.functional.conv1d(x.transpose(1, 2), weight, self.mix.bias, padding=reach,
                                 dilation=self.dilation)
        return y.transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [batch, length, hidden], mask [batch, length, 1] (1 for real tokens)."""
        reach = self.dilation * (self.kernel // 2)
        if self.as_conv:
            h = nn.functional.gelu(self._conv(x * mask, reach))
            return self.norm(x + h)  # type: ignore[no-any-return]
        padded = nn.functional.pad(x * mask, (0, 0, reach, reach))
        # Constant slice bounds (the end counted from the back): no Shape arithmetic in the
        # ONNX graph, which would cost ONNX Runtime a node apiece on every call.
        taps = [padded[:, i * self.dilation: i * self.dilation - 2 * reach or None]
                for i in range(self.kernel)]
        h = nn.functional.gelu(self.mix(torch.cat(taps, dim=-1)))
        out: torch.Tensor = self.norm(x + h)
        return out


class ConvStudent(nn.Module):
    """input_ids, attention_mask [batch, length] -> logits [batch, num_labels]."""

    def __init__(self, cfg: ConvConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.word = nn.Embedding(cfg.vocab_size, cfg.emb_rank)
        self.proj = nn.Linear(cfg.emb_rank, cfg.hidden, bias=False)
        self.emb_norm = nn.LayerNorm(cfg.hidden, eps=1e-12)
        self.layers = nn.ModuleList(ConvLayer(cfg.hidden, cfg.kernel, cfg.dilation(i))
                                    for i in range(cfg.layers))
        self.attend = nn.ModuleList(_Layer(cfg.attention_config()) for _ in range(cfg.attention))
        self.head = nn.Linear(2 * cfg.hidden, cfg.num_labels)

    @property
    def feature_width(self) -> int:
        return 2 * self.cfg.hidden

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.features(input_ids, attention_mask))
        return logits

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The pooled vector the head reads: masked max and mean, concatenated."""
        x = self.emb_norm(self.proj(self.word(input_ids)))
        mask = attention_mask.to(x.dtype)[:, :, None]
        for layer in self.layers:
            x = layer(x, mask)
        if len(self.attend):
            additive = (1.0 - mask.transpose(1, 2).unsqueeze(1)) * -10000.0  # [batch, 1, 1, length]
            for attn in self.attend:
                x = attn(x, additive)
        top = (x + (mask - 1.0) * 10000.0).amax(dim=1)
        mean = (x * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return torch.cat([top, mean], dim=-1)


def init_conv_from_teacher(student: ConvStudent, bert: Any,
                           keep_ids: Sequence[int | list[int]] | None = None) -> None:
    """Start the embedding from the teacher's token embeddings: a rank-``emb_rank`` SVD of the
    (pruned) table, its right factor as the projection when the widths match, and the teacher's
    embedding LayerNorm; attention layers from the teacher's last ones."""
    cfg = student.cfg
    emb = bert.embeddings
    with torch.no_grad():
        table = teacher_token_table(bert, keep_ids)
        u, s, vh = torch.linalg.svd(table, full_matrices=False)
        r = min(cfg.emb_rank, s.shape[0])
        student.word.weight.zero_()  # columns past the table's rank start silent
        student.word.weight[:, :r].copy_(u[:, :r] * s[:r])
        if table.shape[1] == cfg.hidden:
            student.proj.weight[:, :r].copy_(vh[:r].T)
            student.emb_norm.load_state_dict(emb.LayerNorm.state_dict())
        if cfg.attention and fits_teacher(cfg.attention_config(), bert.config):
            for mine, theirs in zip(student.attend, list(bert.encoder.layer)[-cfg.attention:]):
                assert isinstance(mine, _Layer)
                _copy_layer(mine, theirs)
