"""Stage ``vocab``: the student's pruned vocabulary (identity words whole, emoji as tokens)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..emoji_tokens import emoji_names
from ..identity import kept_words
from ..teacher import teacher_dir
from ..vocab import prune_vocab

if TYPE_CHECKING:
    from ..build import Build


@dataclass(frozen=True)
class Vocab:
    vocab_size: int


def vocab(b: Build) -> Vocab:
    texts = [e.text for e in b.transfer_set()]
    b.layout.vocab.mkdir(parents=True, exist_ok=True)
    keep = prune_vocab(teacher_dir() / "tokenizer.json", texts, b.cfg.vocab.min_count,
                       b.cfg.vocab.max_size, b.layout.vocab_tokenizer,
                       keep_words=kept_words() if b.cfg.vocab.keep_identity else (),
                       emoji=emoji_names() if b.cfg.teacher.emoji else None,
                       blind=b.cfg.vocab.blind_identity,
                       blind_except=b.cfg.vocab.blind_except)
    b.layout.vocab_keep.write_text(json.dumps(keep))
    return Vocab(len(keep))
