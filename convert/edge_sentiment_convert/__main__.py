"""``edge-sentiment-convert build --config C --data DIR --out DIR`` (or ``python -m
edge_sentiment_convert``); a missing dependency is a one-line error, exit 4."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_sentiment.errors import EdgeSentimentError, missing_extra


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-sentiment-convert",
                                     description="Build a model bundle from labelled data.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="fine-tune, distil, quantize, export, evaluate, bundle")
    b.add_argument("--config", required=True, type=Path)
    b.add_argument("--data", required=True, type=Path, help="folder laid out like shared/data")
    b.add_argument("--out", required=True, type=Path, help="work folder; reruns resume from it")
    b.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    # The converters log a line per lowered op through the root logger: keep the root at
    # WARNING and let our own stage messages through.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("edge_sentiment_convert").setLevel(logging.INFO)
    try:
        return build(args)
    except ImportError as exc:  # a dependency of this distribution is missing (--no-deps)
        err = missing_extra(str(exc.name or exc), "convert")
        print(f"edge-sentiment-convert: error: {err}", file=sys.stderr)
        return err.exit_code
    except EdgeSentimentError as exc:
        print(f"edge-sentiment-convert: error: {exc}", file=sys.stderr)
        return exc.exit_code


def build(args: argparse.Namespace) -> int:
    from .config import load_config
    from .data import DataError

    cfg = load_config(args.config)
    if not args.data.is_dir():
        raise DataError(f"{args.data}: data folder not found")
    import torch

    from .build import Build

    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    bundle = Build(cfg, args.config, args.data, args.out).run()
    print(f"bundle: {bundle}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
