"""``edge-sentiment-convert build --config C --data DIR --out DIR`` and ``... gate`` (or
``python -m edge_sentiment_convert``); a missing dependency is a one-line error, exit 4."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_sentiment.errors import EdgeSentimentError, missing_extra

from .data import DataError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-sentiment-convert",
                                     description="Build a model bundle from labelled data.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="fine-tune, distil, quantize, export, evaluate, bundle")
    b.add_argument("--config", required=True, type=Path)
    b.add_argument("--data", required=True, type=Path, action="append",
                   help="folder laid out like shared/data (repeat to add another, such as "
                   "`fleet dataset export`'s)")
    b.add_argument("--out", required=True, type=Path, help="work folder; reruns resume from it")
    b.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    b.set_defaults(func=build)
    g = sub.add_parser("gate", help="compare a retrained candidate with the current release")
    g.add_argument("--current", required=True, type=Path, help="the release's bundle")
    g.add_argument("--candidate", required=True, type=Path, help="the candidate bundle")
    g.add_argument("--data", required=True, type=Path, help="frozen splits (shared data)")
    g.add_argument("--fleet", required=True, type=Path,
                   help="the fleet source's folder (fleet dataset export); its test.tsv is held out")
    g.add_argument("--frozen-tolerance", type=float, default=1.0)
    g.add_argument("--min-fleet-gain", type=float, default=0.0)
    g.add_argument("--suite-tolerance", type=float, default=2.0)
    g.add_argument("--seed", type=int, default=13, help="behavioural suite seed")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=gate)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    # The converters log a line per lowered op through the root logger: keep the root at
    # WARNING and let our own stage messages through.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("edge_sentiment_convert").setLevel(logging.INFO)
    try:
        return int(args.func(args))
    except ImportError as exc:  # a dependency of this distribution is missing (--no-deps)
        err = missing_extra(str(exc.name or exc), "convert")
        print(f"edge-sentiment-convert: error: {err}", file=sys.stderr)
        return err.exit_code
    except EdgeSentimentError as exc:
        print(f"edge-sentiment-convert: error: {exc}", file=sys.stderr)
        return exc.exit_code


def build(args: argparse.Namespace) -> int:
    from .config import load_config
    from .data import merge_roots

    cfg = load_config(args.config)
    for root in args.data:
        if not root.is_dir():
            raise DataError(f"{root}: data folder not found")
    args.out.mkdir(parents=True, exist_ok=True)
    data = merge_roots(args.data, args.out / "data")
    import torch

    from .build import Build

    if args.threads:
        torch.set_num_threads(args.threads)
    bundle = Build(cfg, args.config, data, args.out).run()
    print(f"bundle: {bundle}")
    return 0


def gate(args: argparse.Namespace) -> int:
    """Exit 0 when the candidate passes, 1 when it fails (the reasons are printed)."""
    import json

    from edge_sentiment.bundle import open_bundle

    from .gate import GateRules, card_section, decide, frozen_splits, measure, write_card

    fleet = args.fleet / "test.tsv"
    if not fleet.is_file():
        raise DataError(f"{fleet}: the fleet's held-out split is missing")
    frozen = frozen_splits(args.data, leave_out=(args.fleet.name,))
    rules = GateRules(args.frozen_tolerance, args.min_fleet_gain, args.suite_tolerance)
    verdict = decide(measure(args.current, frozen, fleet, args.seed),
                     measure(args.candidate, frozen, fleet, args.seed), rules)
    versions = [open_bundle(b).manifest.version for b in (args.current, args.candidate)]
    if args.candidate.is_dir():
        write_card(args.candidate / "MODEL_CARD.md", card_section(verdict, *versions))
    if args.json:
        print(json.dumps({**verdict.to_json(), "current": versions[0],
                          "candidate": versions[1]}))
    else:
        print(f"gate: candidate {versions[1]} against {versions[0]}: "
              + ("passed" if verdict.passed else "failed: " + "; ".join(verdict.reasons)))
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
