"""Prune the teacher's 30k WordPiece vocabulary to the tokens the training text uses.

Every single-character piece (``a`` and ``##a``) is kept, so any word still
tokenizes: a dropped whole-word token falls back to smaller pieces. The
embedding table is what dominates a small model's size, so this is where the
student's bytes are saved.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from edge_sentiment.errors import ConfigError

from .emoji_tokens import add_emoji_tokens
from .identity import BLIND_TOKEN, anchor_tokenizer, blind_normalizers, blind_words

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def prune_vocab(teacher_json: Path, texts: list[str], min_count: int, max_size: int,
                out_json: Path, keep_words: Sequence[str] = (),
                emoji: dict[str, str] | None = None, blind: bool = False,
                blind_except: Sequence[str] = ()) -> list[int | list[int]]:
    """Write the pruned tokenizer; return, in new-id order, the teacher id each row copies (or,
    for an emoji token the teacher lacks, the ids of its name's word pieces, to average).

    ``keep_words`` are kept whole when the teacher has them; ``emoji`` (character -> name) makes
    each emoji one token (convert/emoji_tokens.py); ``blind`` reads every identity word as one
    token, whose row averages the teacher's rows of those words (convert/identity.py), but for
    the words in ``blind_except``."""
    tok = Tokenizer.from_file(str(teacher_json))
    tok.no_padding()
    tok.no_truncation()
    counts: Counter[int] = Counter()
    for enc in tok.encode_batch(texts, add_special_tokens=False):
        counts.update(enc.ids)
    data = json.loads(teacher_json.read_text(encoding="utf-8"))
    vocab: dict[str, int] = data["model"]["vocab"]
    by_id = {i: t for t, i in vocab.items()}
    must = {vocab[t] for t in SPECIALS} | {i for t, i in vocab.items()
                                           if len(t) == 1 or (t.startswith("##") and len(t) == 3)}
    must |= {vocab[w] for w in keep_words if w in vocab}
    frequent = [i for i, c in counts.most_common() if c >= min_count and i not in must]
    keep = sorted(must | set(frequent[: max(0, max_size - len(must))]))
    new_ids = {old: new for new, old in enumerate(keep)}
    data["model"]["vocab"] = {by_id[old]: new for old, new in new_ids.items()}
    data["padding"] = None
    data["truncation"] = None
    data["added_tokens"] = [dict(t, id=new_ids[t["id"]]) for t in data.get("added_tokens", [])
                            if t["id"] in new_ids]
    post = data.get("post_processor") or {}
    for name, spec in (post.get("special_tokens") or {}).items():
        spec["ids"] = [new_ids[vocab[name]]]
    rows: list[int | list[int]] = list(keep)
    if emoji:
        added = add_emoji_tokens(data, list(emoji))
        pieces = tok.encode_batch([emoji[c] for c in added], add_special_tokens=False)
        unk = vocab["[UNK]"]
        rows += [[i for i in p.ids if i != unk] or [unk] for p in pieces]
    if blind:
        rows.append(_blind(data, vocab, blind_except))
    out_json.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return rows


def _blind(data: dict[str, Any], teacher_vocab: dict[str, int], but: Sequence[str]) -> list[int]:
    """Add the blinding steps after the document's normalizer and the token they write; return
    the teacher ids whose mean starts the token's row."""
    steps = blind_normalizers(but)
    norm = data.get("normalizer")
    if norm and norm.get("type") == "Sequence":
        norm["normalizers"] += steps
    else:
        data["normalizer"] = {"type": "Sequence", "normalizers": [*([norm] if norm else []),
                                                                   *steps]}
    vocab: dict[str, int] = data["model"]["vocab"]
    vocab[BLIND_TOKEN] = len(vocab)
    return sorted({teacher_vocab[w] for w in blind_words(but) if w in teacher_vocab})


def write_anchored(src: Path, dst: Path, anchor: str) -> Path:
    """``src`` with identity words read as ``anchor`` (``identity.anchor_tokenizer``), written
    to ``dst`` when it differs. The anchor must be a whole word of the vocabulary."""
    text = src.read_text(encoding="utf-8")
    if anchor not in json.loads(text)["model"]["vocab"]:
        raise ConfigError(f"identity_anchor {anchor!r} is not a word of the student's vocabulary")
    out = anchor_tokenizer(text, anchor)
    if not dst.is_file() or dst.read_text(encoding="utf-8") != out:
        dst.write_text(out, encoding="utf-8")
    return dst
