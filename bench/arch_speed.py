"""How fast can a student of a given shape be, against the teacher, on this machine?

    python bench/arch_speed.py --out docs/arch_speed.md [--texts amazon]

Speed does not depend on the weights, so every model here has random (or, for the teacher,
un-fine-tuned) weights: no build is needed, only the ``convert`` extra. Each shape is exported
the way the build exports a student (fp32 ONNX, then dynamic int8 with per-tensor weights), the
teacher the way the build exports it (fp32, and dynamic int8 per-channel). Every model is timed
through the runtime's own tokenizer and ONNX backend (``TextEncoder.encode`` + ``OnnxBackend.run``:
what ``classify`` does for one text, less its bookkeeping), on the bench's sample texts, with
the threads the machine's profile gives; the models take turns over ``--rounds`` rounds and
the figures are medians. The table gives the multiply-accumulates per token of the encoder
(projections and feed-forward; attention scores add ``2 * length * width`` more; for the
convolutional students, the embedding projection and the kernel x hidden -> hidden mixes) and
the ratio
of the teacher's latency to each student's, the figure the conversion issue's 10x and 4x
speed targets are about.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

# name -> (layers, hidden, heads, head_dim (0: hidden // heads), intermediate)
SHAPES: dict[str, tuple[int, int, int, int, int]] = {
    "L2-A384-F768 (bundle 1.2.0)": (2, 384, 12, 0, 768),
    "L2-H384-F1536 (bundle 1.1.0)": (2, 384, 12, 0, 1536),
    "L2-A192-F512": (2, 384, 6, 32, 512),
    "L2-H256-F512": (2, 256, 4, 0, 512),
    "L1-A384-F1536": (1, 384, 12, 0, 1536),
    "L1-A384-F768": (1, 384, 12, 0, 768),
    "L1-A384-F384": (1, 384, 12, 0, 384),
    "L2-H192-F384": (2, 192, 6, 0, 384),
}
# The convolutional student (convert/cnn.py): name -> (layers, hidden, emb_rank, kernel,
# attention layers on top, their feed-forward width)
CNN_SHAPES: dict[str, tuple[int, int, int, int, int, int]] = {
    "C3-H384-r128 (cnn)": (3, 384, 128, 3, 0, 0),
    "C4-H384-r256 (cnn)": (4, 384, 256, 3, 0, 0),
    "C3-H256-r128 (cnn)": (3, 256, 128, 3, 0, 0),
    "C3-H384-r128-A1-F768 (cnn)": (3, 384, 128, 3, 1, 768),
    "C3-H384-r128-A1-F384 (cnn)": (3, 384, 128, 3, 1, 384),
    "C2-H384-r128-A1-F768 (cnn)": (2, 384, 128, 3, 1, 768),
}


def macs_per_token(layers: int, hidden: int, heads: int, head_dim: int, inter: int) -> int:
    width = heads * (head_dim or hidden // heads)
    return layers * (4 * hidden * width + 2 * hidden * inter)


def cnn_macs_per_token(layers: int, hidden: int, rank: int, kernel: int, attention: int,
                       inter: int) -> int:
    return rank * hidden + layers * kernel * hidden * hidden + \
        macs_per_token(attention, hidden, 12, 0, inter)


TEACHER_MACS = macs_per_token(6, 384, 12, 0, 1536)  # all-MiniLM-L6-v2
ALL_MACS = {**{n: macs_per_token(*v) for n, v in SHAPES.items()},
            **{n: cnn_macs_per_token(*v) for n, v in CNN_SHAPES.items()}}


def export_students(folder: Path, vocab: int, only: str = "") -> dict[str, Path]:
    import torch

    from edge_sentiment_convert.cnn import ConvConfig, ConvStudent
    from edge_sentiment_convert.export import export_onnx, quantize_onnx
    from edge_sentiment_convert.model import Student, StudentConfig

    torch.manual_seed(0)
    models: dict[str, torch.nn.Module] = {}
    for name, (layers, hidden, heads, head_dim, inter) in SHAPES.items():
        models[name] = Student(StudentConfig(
            vocab_size=vocab, layers=layers, hidden=hidden, heads=heads, head_dim=head_dim,
            intermediate=inter, emb_rank=128, gelu="exact"))
    for name, (layers, hidden, rank, kernel, attention, inter) in CNN_SHAPES.items():
        models[name] = ConvStudent(ConvConfig(vocab_size=vocab, layers=layers, hidden=hidden,
                                              emb_rank=rank, kernel=kernel, attention=attention,
                                              intermediate=inter or 768))
    out = {}
    for name, model in models.items():
        if only not in name:
            continue
        stem = folder / name.split()[0]
        export_onnx(model.eval(), stem.with_suffix(".fp32.onnx"))
        out[name] = quantize_onnx(stem.with_suffix(".fp32.onnx"), stem.with_suffix(".int8.onnx"),
                                  per_channel=False)
    return out


def export_teacher(folder: Path) -> dict[str, Path]:
    from edge_sentiment_convert.export import export_onnx, quantize_onnx
    from edge_sentiment_convert.teacher import Teacher

    fp32 = export_onnx(Teacher(3).eval(), folder / "teacher.fp32.onnx")
    return {"teacher fp32": fp32,
            "teacher int8 (per-channel)": quantize_onnx(fp32, folder / "teacher.int8.onnx",
                                                        per_channel=True)}


def timer(model: Path, tokenizer: Path, manifest: Any, threads: int, texts: list[str]) -> Any:
    from edge_sentiment.backends.base import BackendOptions
    from edge_sentiment.backends.onnx import OnnxBackend
    from edge_sentiment.tokenize import TextEncoder

    encoder = TextEncoder(tokenizer, manifest)
    backend = OnnxBackend(model, BackendOptions("CPUExecutionProvider", threads))

    def run(n: int) -> float:
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            enc = encoder.encode([texts[i % len(texts)]])
            backend.run(enc.input_ids, enc.attention_mask)
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3

    run(50)  # warm-up
    return run


def measure(models: dict[str, tuple[Path, Path]], manifest: Any, threads: int, n: int,
            rounds: int, texts: list[str]) -> dict[str, float]:
    """``manifest``: the default bundle's, for the truncation policy and special tokens."""
    runners = {name: timer(path, tok, manifest, threads, texts)
               for name, (path, tok) in models.items()}
    seen: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            seen[name].append(run(n))
    return {name: statistics.median(v) for name, v in seen.items()}


def report(ms: dict[str, float], threads: int, texts: str) -> str:
    fp32, int8 = ms["teacher fp32"], ms["teacher int8 (per-channel)"]
    rows = ["| model | MACs / token | p50 ms (1 text) | x teacher fp32 | x teacher int8 |",
            "|---|---|---|---|---|",
            f"| teacher fp32 | {TEACHER_MACS / 1e6:.2f} M | {fp32:.3f} | 1.0 | |",
            f"| teacher int8 (per-channel) | {TEACHER_MACS / 1e6:.2f} M | {int8:.3f} | | 1.0 |"]
    for name, macs in ALL_MACS.items():
        if name not in ms:
            continue
        rows.append(f"| {name} int8 | {macs / 1e6:.2f} M | {ms[name]:.3f} | "
                    f"{fp32 / ms[name]:.1f} | {int8 / ms[name]:.1f} |")
    from edge_sentiment_convert.report import machine

    head = (f"# Student shape against speed ({machine(threads)})\n\n"
            f"`python bench/arch_speed.py` on {texts}: random weights (speed does not depend on "
            "them), tokenization included, medians over rounds taken in turns. The targets are "
            "10x the teacher fp32 and 4x the teacher int8.\n\n")
    return head + "\n".join(rows) + "\n"


def sample_texts(kind: str, data: Path | None) -> tuple[list[str], str]:
    from edge_sentiment.bench import SAMPLE_TEXTS
    from edge_sentiment.evaluate import read_labeled_tsv

    if kind == "sample":
        return list(SAMPLE_TEXTS), "the bench's 8 sample texts (9-15 tokens)"
    if data is None:
        raise SystemExit("--texts amazon needs --data DIR")
    texts = read_labeled_tsv(data / "amazon_marc_en" / "test.tsv")[0][:300]
    return texts, "the first 300 amazon_marc_en test texts"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=0, help="0: the matched profile's threads")
    ap.add_argument("--texts", choices=("sample", "amazon"), default="sample")
    ap.add_argument("--data", type=Path, help="data folder, for --texts amazon")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="", help="time only the students whose name holds this")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from tokenizers import Tokenizer

    from edge_sentiment import SentimentClassifier
    from edge_sentiment_convert.teacher import teacher_dir

    default = SentimentClassifier.load(runtime="onnx")
    threads = args.threads or default.info.threads
    texts, described = sample_texts(args.texts, args.data)
    student_tok = default.bundle.tokenizer_path()
    vocab = Tokenizer.from_file(str(student_tok)).get_vocab_size()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        students = export_students(folder, vocab, args.only)
        models = {name: (path, student_tok) for name, path in students.items()}
        models.update({name: (path, teacher_dir() / "tokenizer.json")
                       for name, path in export_teacher(folder).items()})
        ms = measure(models, default.bundle.manifest, threads, args.n, args.rounds, texts)
    text = report(ms, threads, described)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
