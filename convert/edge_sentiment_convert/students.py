"""Student architectures by config value: ``arch = "transformer"`` (convert/model.py) or
``"cnn"`` (convert/cnn.py), each built and initialised from the teacher the same way."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .cnn import ConvConfig, ConvStudent, init_conv_from_teacher
from .config import StudentCfg
from .model import Student, StudentConfig, init_from_teacher

StudentModel = Student | ConvStudent


def make_student(spec: StudentCfg, vocab_size: int, max_len: int) -> StudentModel:
    """An untrained student of ``spec``'s architecture and shape."""
    if spec.arch == "cnn":
        return ConvStudent(ConvConfig(vocab_size=vocab_size, hidden=spec.hidden,
                                      layers=spec.layers, kernel=spec.kernel or 3,
                                      emb_rank=spec.emb_rank, max_len=max_len,
                                      attention=spec.attention, **_attention_shape(spec)))
    return Student(StudentConfig(vocab_size=vocab_size, hidden=spec.hidden, layers=spec.layers,
                                 heads=spec.heads, intermediate=spec.intermediate,
                                 max_len=max_len, emb_rank=spec.emb_rank, head_dim=spec.head_dim,
                                 gelu=spec.gelu))


def init_student(model: StudentModel, bert: nn.Module, keep_ids: Sequence[int | list[int]]) -> None:
    """Copy what fits from the fine-tuned teacher's ``BertModel``."""
    if isinstance(model, ConvStudent):
        init_conv_from_teacher(model, bert, keep_ids)
    elif isinstance(model, Student):
        init_from_teacher(model, bert, keep_ids)
    else:
        raise TypeError(f"no teacher initialisation for {type(model).__name__}")


def _attention_shape(spec: StudentCfg) -> dict[str, int]:
    """A CNN's attention-layer shape: the config's when it has such layers (config.py requires
    heads and intermediate then), else ConvConfig's defaults."""
    return {"heads": spec.heads, "intermediate": spec.intermediate} if spec.attention else {}
