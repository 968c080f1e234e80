"""``edge-sentiment-convert build --config C --data DIR --out DIR``, ``... rebundle`` and ``... gate`` (or
``python -m edge_sentiment_convert``); a missing dependency is a one-line error, exit 4."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_sentiment.errors import ConfigError, EdgeSentimentError, missing_extra
from edge_sentiment.protocol import DEFAULT_PREFIX

from .data import DataError
from .track import DEFAULT_URI, TRACKERS


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
    b.add_argument("--from", type=Path, dest="earlier", metavar="BUILD",
                   help="an earlier build folder whose fine-tuned teacher this one reuses, as the "
                   "config's [teacher] reuse says")
    b.add_argument("--track", choices=TRACKERS, help="log the finished build (config, stage "
                   "metrics, card, confusion images, bundle) to an experiment tracker")
    b.add_argument("--tracking-uri", default=DEFAULT_URI, help=f"default {DEFAULT_URI}")
    b.add_argument("--experiment", help="tracker experiment (default: the config's name)")
    b.set_defaults(func=build)
    rb = sub.add_parser("rebundle", help="a new version of a built bundle from its trained "
                       "student, as a config's last stages say (no teacher), measured and carded")
    rb.add_argument("--bundle", required=True, type=Path, help="the built bundle folder")
    rb.add_argument("--version", required=True, help="the new bundle's version")
    rb.add_argument("--config", required=True, type=Path,
                   help="the build config: identity_anchor, onnx_quant, onnx_graph, "
                   "tflite_lengths, its student, sources, seed, speed settings and [targets]")
    rb.add_argument("--data", required=True, type=Path, help="folder laid out like shared/data")
    rb.add_argument("--out", required=True, type=Path, help="work folder; the bundle goes in "
                   "OUT/bundle")
    rb.set_defaults(func=rebundle)
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
    r = g.add_argument_group("release", "on a pass, sign the candidate as a release (and publish "
                             "it); nothing is signed when it fails")
    r.add_argument("--sign-key", action="append", type=Path, dest="keys", default=[],
                   help="a release signing key (repeat up to the trust threshold)")
    r.add_argument("--release-version", help="the release's version (above the candidate's own)")
    r.add_argument("--release-out", type=Path, help="where the signed release goes")
    r.add_argument("--channel", default="canary", help="the release channel (default canary)")
    r.add_argument("--publish", metavar="BROKER", help="mqtt://host:port: publish the release")
    r.add_argument("--prefix", default=DEFAULT_PREFIX, help="MQTT topic prefix")
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
    if args.earlier and args.earlier.resolve() == args.out.resolve():
        raise ConfigError("--from must name another build folder than --out")
    if args.track:  # before hours of work: the tracker's extra must be there
        from .track import require

        require(args.track)
    args.out.mkdir(parents=True, exist_ok=True)
    data = merge_roots(args.data, args.out / "data")
    import torch

    from .build import Build

    if args.threads:
        torch.set_num_threads(args.threads)
    bundle = Build(cfg, args.config, data, args.out, args.earlier).run()
    print(f"bundle: {bundle}")
    if args.track:
        from .track import log_build

        run = log_build(args.config, args.out, bundle, args.tracking_uri, args.experiment)
        print(f"tracked: {args.track} run {run} in {args.tracking_uri}")
    return 0


def rebundle(args: argparse.Namespace) -> int:
    from .config import load_config
    from .rebundle import RebundleJob, rebundle

    if not args.data.is_dir():
        raise DataError(f"{args.data}: data folder not found")
    job = RebundleJob(args.bundle, args.version, load_config(args.config), args.config,
                      args.data, args.out)
    print(f"bundle: {rebundle(job)}")
    return 0


def gate(args: argparse.Namespace) -> int:
    """Exit 0 when the candidate passes, 1 when it fails (the reasons are printed)."""
    import json

    from edge_sentiment.bundle import open_bundle

    from .gate import GateRules, card_section, decide, frozen_splits, measure, write_card

    check_release_args(args)  # before any scoring
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
    release = release_candidate(args) if verdict.passed and args.keys else {}
    if args.json:
        print(json.dumps({**verdict.to_json(), "current": versions[0],
                          "candidate": versions[1], **release}))
    else:
        print(f"gate: candidate {versions[1]} against {versions[0]}: "
              + ("passed" if verdict.passed else "failed: " + "; ".join(verdict.reasons)))
        if release:
            print(f"gate: signed {release['release']} ({release['channel']})"
                  + (f", published to {args.publish}" if "published" in release else ""))
    return 0 if verdict.passed else 1


def check_release_args(args: argparse.Namespace) -> None:
    if args.keys and not (args.release_version and args.release_out):
        raise ConfigError("--sign-key needs --release-version and --release-out")
    if (args.release_version or args.release_out or args.publish) and not args.keys:
        raise ConfigError("--release-version, --release-out and --publish need --sign-key")
    if args.publish:
        from edge_sentiment.protocol import BrokerSettings

        BrokerSettings(args.publish)  # a malformed URL or one with credentials: before the gate


def release_candidate(args: argparse.Namespace) -> dict[str, object]:
    """Sign the passed candidate as a release on ``--channel``; publish it with ``--publish``."""
    from edge_sentiment.fleet.ops import publish_release, sign_release
    from edge_sentiment.protocol import BrokerSettings

    sign_release(args.candidate, args.keys, args.release_version, args.channel,
                 args.release_out)
    out: dict[str, object] = {"release": str(args.release_out), "channel": args.channel,
                              "release_version": args.release_version}
    if args.publish:
        out["published"] = publish_release(BrokerSettings(args.publish), args.release_out,
                                           args.prefix)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
