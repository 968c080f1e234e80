"""Make the tiny real bundle the tests use (and the placeholder default bundle).

    python -m edge_sentiment_convert.tiny --data tests/fixtures/data --out tests/fixtures/tiny_bundle

It trains a WordPiece tokenizer and a one-layer, 32-wide student on the
few-hundred-line fixture for a few seconds, then exports ONNX (fp32 and int8)
and TFLite (fp32, fixed [1, 32]). The files are a few KB and are committed.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from .bundle_writer import write_bundle
from .data import LABELS, load_split, load_unlabeled
from .export import export_onnx, export_tflite, quantize_onnx
from .model import Student, StudentConfig

log = logging.getLogger(__name__)
MAX_LEN = 32
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_tokenizer(texts: list[str], out: Path, vocab_size: int = 600) -> Tokenizer:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                        show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.save(str(out))
    return tok


def _batch(tok: Tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.zeros((len(texts), MAX_LEN), dtype=torch.long)
    mask = torch.zeros((len(texts), MAX_LEN), dtype=torch.long)
    for i, enc in enumerate(tok.encode_batch(texts, add_special_tokens=False)):
        row = [2, *enc.ids[: MAX_LEN - 2], 3]
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask


def train_tiny(tok: Tokenizer, texts: list[str], labels: list[int], epochs: int = 30) -> Student:
    torch.manual_seed(0)
    cfg = StudentConfig(vocab_size=tok.get_vocab_size(), hidden=32, layers=1, heads=2,
                        intermediate=64, max_len=MAX_LEN)
    model = Student(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    ids, mask = _batch(tok, texts)
    y = torch.tensor(labels)
    for _ in range(epochs):
        for start in range(0, len(texts), 32):
            sl = slice(start, start + 32)
            loss = torch.nn.functional.cross_entropy(model(ids[sl], mask[sl]), y[sl])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    return model.eval()


def build(data: Path, out: Path) -> None:
    train = load_split(data, "reviews", "train")
    dev = load_split(data, "reviews", "dev")
    extra = [e.text for e in load_unlabeled(data, None, 0)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tok = train_tokenizer([e.text for e in train] + extra, work / "tokenizer.json")
        model = train_tiny(tok, [e.text for e in train], [LABELS.index(e.label) for e in train])
        export_onnx(model, work / "model.fp32.onnx")
        quantize_onnx(work / "model.fp32.onnx", work / "model.int8.onnx")
        export_tflite(model, work / "model.fp32.tflite", MAX_LEN)
        write_bundle(
            out, name="edge-sentiment-tiny", version="0.0.1", labels=LABELS,
            max_seq_length=MAX_LEN, tokenizer_file=work / "tokenizer.json",
            models=[
                {"path": work / "model.fp32.onnx", "runtime": "onnx", "precision": "fp32",
                 "input_shape": [None, None]},
                {"path": work / "model.int8.onnx", "runtime": "onnx", "precision": "int8",
                 "input_shape": [None, None]},
                {"path": work / "model.fp32.tflite", "runtime": "tflite", "precision": "fp32",
                 "input_shape": [1, MAX_LEN]},
            ],
            golden_texts=[e.text for e in dev + train], reference_texts=[e.text for e in dev],
            placeholder=True, per_label=2,
            card="# Tiny test bundle\n\nA PLACEHOLDER: a 1-layer, 32-wide model trained for "
                 "seconds on a 240-line fixture by `python -m edge_sentiment_convert.tiny`. It exists so the "
                 "runtime and its tests run on real ONNX and TFLite files. Its predictions are "
                 "barely better than chance. Do not use it for anything else.\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("tests/fixtures/data"))
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/tiny_bundle"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    build(args.data, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
