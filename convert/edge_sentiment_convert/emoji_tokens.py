"""Emoji in the tokenizers, so that no common emoji reads as ``[UNK]``.

The teacher (all-MiniLM-L6-v2) has no emoji in its WordPiece vocabulary. Its build tokenizer
therefore rewrites each emoji as its CLDR short name ("😍" -> " smiling face with heart-eyes "),
which the pretrained encoder can read. That costs about 1 ms a text, paid only at build time.

The student's tokenizer (the one a bundle ships) instead isolates each emoji as a token of its
own (a ``Split`` pre-tokenizer on one character class) and adds those tokens to its vocabulary:
one regex pass, no slower than before. A new row starts as the mean of the teacher's embeddings
of the name's word pieces, and distillation on texts with emoji (labelled by the teacher reading
the names) trains it. Skin-tone modifiers are removed in both tokenizers, so they never change
a label; U+FE0F is dropped by the BERT normalizer already.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge_sentiment.errors import missing_extra

SKIN_TONES = tuple(chr(c) for c in range(0x1F3FB, 0x1F400))
_VS16 = "\ufe0f"


def emoji_names() -> dict[str, str]:
    """Every single-code-point emoji (skin tones left out) -> its CLDR name in plain words."""
    try:
        import emoji
    except ImportError as exc:
        raise missing_extra("emoji", "convert") from exc
    out: dict[str, str] = {}
    for seq, data in emoji.EMOJI_DATA.items():
        ch = seq.replace(_VS16, "")
        if len(ch) != 1 or ord(ch) < 0x80 or ch in SKIN_TONES:
            continue
        out[ch] = str(data["en"]).strip(":").replace("_", " ")
    return dict(sorted(out.items()))


def _replace(pattern: str, content: str) -> dict[str, Any]:
    return {"type": "Replace", "pattern": {"String": pattern}, "content": content}


def _strip_skin_tones(normalizer: dict[str, Any] | None) -> dict[str, Any]:
    steps = [_replace(s, "") for s in SKIN_TONES]
    return {"type": "Sequence", "normalizers": [*steps, *([normalizer] if normalizer else [])]}


def write_teacher_tokenizer(src: Path, dst: Path) -> Path:
    """The teacher's tokenizer with every emoji spelled out as its name."""
    data = json.loads(src.read_text(encoding="utf-8"))
    names = [_replace(ch, f" {words} ") for ch, words in emoji_names().items()]
    base = _strip_skin_tones(data.get("normalizer"))
    base["normalizers"][len(SKIN_TONES):len(SKIN_TONES)] = names
    data["normalizer"] = base
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return dst


def char_class(chars: list[str]) -> str:
    """An Oniguruma character class matching exactly ``chars`` (as ranges)."""
    points = sorted({ord(c) for c in chars})
    parts, i = [], 0
    while i < len(points):
        j = i
        while j + 1 < len(points) and points[j + 1] == points[j] + 1:
            j += 1
        parts.append(f"\\x{{{points[i]:X}}}" + (f"-\\x{{{points[j]:X}}}" if j > i else ""))
        i = j + 1
    return "[" + "".join(parts) + "]"


def add_emoji_tokens(data: dict[str, Any], chars: list[str]) -> list[str]:
    """Make a WordPiece tokenizer document isolate ``chars`` and know each as a token; returns
    the characters that were added to the vocabulary (those it lacked), in id order."""
    vocab: dict[str, int] = data["model"]["vocab"]
    split = {"type": "Split", "pattern": {"Regex": char_class(chars)}, "behavior": "Isolated",
             "invert": False}
    pre = data.get("pre_tokenizer")
    data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [split, *([pre] if pre else [])]}
    data["normalizer"] = _strip_skin_tones(data.get("normalizer"))
    added = [c for c in chars if c not in vocab]
    for c in added:
        vocab[c] = len(vocab)
    return added


_EXPRESSIVE = ("face", "heart", "hand", "thumbs", "smil", "cry", "tear", "angry", "kiss", "grin",
               "clap", "fire", "poo", "skull", "star", "party", "sad", "joy")


def emoji_texts(texts: list[str], count: int, seed: int) -> list[str]:
    """``count`` copies of randomly drawn ``texts`` with one emoji (sometimes repeated) put at
    the end, the start or in place of a word; faces, hearts and hands are drawn five times as
    often as other emoji. The teacher labels them (reading the emoji's name)."""
    import random

    if count <= 0 or not texts:
        return []
    rng = random.Random(f"emoji:{seed}")
    names = emoji_names()
    chars = list(names)
    weights = [5.0 if any(k in names[c] for k in _EXPRESSIVE) else 1.0 for c in chars]
    out = []
    for _ in range(count):
        words = rng.choice(texts).split()
        mark = rng.choices(chars, weights)[0] * (rng.randint(2, 3) if rng.random() < 0.2 else 1)
        where = rng.random()
        if where < 0.6 or len(words) < 2:
            words.append(mark)
        elif where < 0.75:
            words.insert(0, mark)
        else:
            words[rng.randrange(len(words))] = mark
        out.append(" ".join(words))
    return out
