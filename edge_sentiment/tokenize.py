"""Tokenization with the Rust ``tokenizers`` library and the bundle's truncation policy.

Texts are encoded without padding; a batch is padded to its longest member (or
to a backend's fixed length). Long texts are cut by characters before encoding,
so a 1 MB string costs no more than a few KB.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from .errors import BundleError, InputError
from .manifest import Manifest

# A wordpiece consumes at least one character, so this many characters per token
# is enough to fill the window except for pathological inputs (handled below).
_CHARS_PER_TOKEN = 24
_MAX_GROWTH = 16  # the widest cut: 16 x the first one


def _visible(c: str) -> bool:
    return not c.isspace() and unicodedata.category(c) not in ("Cf", "Cc")


def check_text(text: object) -> str:
    """Return ``text`` if it is a usable string; raise InputError saying why not."""
    if text is None:
        raise InputError("text is None; expected a non-empty str")
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"text bytes are not valid UTF-8 (at byte {exc.start})") from exc
    if not isinstance(text, str):
        raise InputError(f"text must be str, got {type(text).__name__}")
    if not text.strip():
        raise InputError("text is empty or only whitespace")
    if not any(_visible(c) for c in text):  # stops at the first visible character
        raise InputError("text has no visible characters (only whitespace, control or "
                         "format characters such as U+200B)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"text contains an unpaired surrogate at index {exc.start}") from exc
    return text


@dataclass(frozen=True)
class Encoded:
    """A padded batch: ids and mask of shape [batch, length], plus per-text facts."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    lengths: list[int]
    unknown_share: list[float]


class TextEncoder:
    """Turns texts into model inputs according to a bundle manifest."""

    def __init__(self, tokenizer_file: Path, manifest: Manifest) -> None:
        try:
            tok = Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # tokenizers raises plain Exception
            raise BundleError(f"{tokenizer_file.name}: cannot load tokenizer: {exc}") from exc
        tok.no_padding()
        tok.no_truncation()
        self._tok = tok
        self._max = manifest.max_seq_length
        self._policy = manifest.truncation
        self._head = manifest.head_tokens
        spec = manifest.tokenizer
        ids = {name: tok.token_to_id(token) for name, token in (
            ("cls", spec.cls_token), ("sep", spec.sep_token),
            ("pad", spec.pad_token), ("unk", spec.unk_token))}
        missing = [name for name, value in ids.items() if value is None]
        if missing:
            raise BundleError(f"tokenizer.json lacks special tokens: {missing}")
        self._cls, self._sep = int(ids["cls"]), int(ids["sep"])  # type: ignore[arg-type]
        self._pad, self._unk = int(ids["pad"]), int(ids["unk"])  # type: ignore[arg-type]

    @property
    def max_length(self) -> int:
        return self._max

    def _clip(self, text: str, factor: int = 1) -> str:
        budget = self._max * _CHARS_PER_TOKEN * factor
        if len(text) <= 2 * budget:
            return text
        if self._policy == "head_tail":
            return text[:budget] + " " + text[-budget:]
        return text[:budget]

    def _body_ids(self, texts: list[str]) -> list[list[int]]:
        clipped = [self._clip(t) for t in texts]
        encs = self._tok.encode_batch(clipped, add_special_tokens=False)
        bodies = [list(e.ids) for e in encs]
        room = self._max - 2
        for i, body in enumerate(bodies):
            factor = 1
            while len(body) < room and clipped[i] is not texts[i] and factor < _MAX_GROWTH:
                # Very long "words" gave too few tokens: a wider cut, never the whole text, so a
                # megabyte without spaces costs milliseconds (a word past the tokenizer's
                # longest is one [UNK] however long it is).
                factor *= 4
                clipped[i] = self._clip(texts[i], factor)
                body = list(self._tok.encode(clipped[i], add_special_tokens=False).ids)
            bodies[i] = body
        return bodies

    def _truncate(self, body: list[int]) -> list[int]:
        room = self._max - 2
        if len(body) <= room:
            return body
        if self._policy == "head_tail":
            tail = room - self._head
            return body[: self._head] + body[-tail:]
        return body[:room]

    def unknown_emoji(self, emoji: list[str]) -> list[str]:
        """The strings of ``emoji`` whose every token is the unknown token."""
        encs = self._tok.encode_batch(emoji, add_special_tokens=False)
        return [e for e, enc in zip(emoji, encs) if not enc.ids or
                all(i == self._unk for i in enc.ids)]

    def rows(self, texts: list[str]) -> list[list[int]]:
        """Each text's ids as the model reads them: [CLS], the truncated body, [SEP]."""
        return [[self._cls, *self._truncate(b), self._sep] for b in self._body_ids(texts)]

    def encode(self, texts: list[str], pad_to: int | None = None) -> Encoded:
        """Encode a batch; pad to the longest text, or to ``pad_to`` when given."""
        return self.pad(self.rows(texts), pad_to)

    def pad(self, rows: list[list[int]], pad_to: int | None = None) -> Encoded:
        """Pad token rows (from :meth:`rows`) into one batch."""
        width = pad_to or max(len(r) for r in rows)
        ids = np.full((len(rows), width), self._pad, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        unknown: list[float] = []
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
            body = len(row) - 2
            unknown.append(sum(1 for t in row if t == self._unk) / body if body else 0.0)
        return Encoded(ids, mask, [len(r) for r in rows], unknown)
