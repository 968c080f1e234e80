"""``edge-sentiment fleet ...``: keygen, trust, sign, publish, status, rotate-trust; the
exporter and the samples commands (collect, samples forget, dataset export) add their own."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path
from typing import Any

from ..protocol import DEFAULT_PREFIX


def _broker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", required=True, help="mqtt://host:1883 or mqtts://host:8883")
    p.add_argument("--tls-ca", type=Path)
    p.add_argument("--tls-cert", type=Path)
    p.add_argument("--tls-key", type=Path)
    p.add_argument("--username")
    p.add_argument("--password-file", type=Path)
    p.add_argument("--prefix", default=DEFAULT_PREFIX)


def add_parser(sub: Any) -> None:
    fleet = sub.add_parser("fleet", help="sign, publish and watch model releases")
    fs = fleet.add_subparsers(dest="fleet_command", required=True)
    p = fs.add_parser("keygen", help="write NAME.key (0600) and NAME.pub")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--name", default="release")
    p.set_defaults(func=keygen)
    p = fs.add_parser("trust", help="write a trust file from public keys")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--threshold", type=int, default=1)
    p.add_argument("--rollout-key", action="append", type=Path, dest="rollout_pubs",
                   help="a rollout role public key (repeat): releases then wait for directives")
    p.add_argument("--rollout-threshold", type=int, default=1)
    p.add_argument("pubkeys", nargs="+", type=Path)
    p.set_defaults(func=trust)
    p = fs.add_parser("rollout-sign", help="sign a rollout directive for a signed release")
    p.add_argument("--key", type=Path, required=True, help="the rollout role's private key")
    p.add_argument("--release", type=Path, required=True, help="a folder fleet sign wrote")
    p.add_argument("--sequence", type=int, required=True, help="above the last one published")
    p.add_argument("--share", type=float, required=True, help="0..1 of the devices")
    p.add_argument("--salt", help="bucket salt (default: the release version)")
    p.add_argument("--state", default="active", choices=["active", "paused", "aborted"])
    p.add_argument("--revoke", action="append", dest="revoked", help="a version (repeat)")
    p.add_argument("--expires-hours", type=float, default=24.0)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=rollout_sign)
    p = fs.add_parser("rotate-trust", help="new trust file signed by the current keys")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--current-trust", type=Path, required=True)
    p.add_argument("--key", action="append", type=Path, required=True, dest="keys",
                   help="a current private key (repeat up to the current threshold)")
    p.add_argument("--threshold", type=int, default=1)
    p.add_argument("pubkeys", nargs="+", type=Path)
    p.set_defaults(func=rotate)
    p = fs.add_parser("sign", help="make a signed release from a bundle")
    p.add_argument("--key", action="append", type=Path, required=True, dest="keys")
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--channel", default="stable")
    p.add_argument("--expires-days", type=float, default=30.0)
    p.add_argument("--profile", action="append", dest="profiles", help="target profile (repeat)")
    p.add_argument("--arch", action="append", dest="arches", help="target arch (repeat)")
    p.add_argument("--chunk-size", type=int, default=64 * 1024)
    p.add_argument("--force", action="store_true",
                   help="sign without the checks (self-test, version above the bundle's, expiry)")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=sign)
    p = fs.add_parser("unpublish", help="clear a release's retained chunks (and its manifest)")
    _broker_args(p)
    p.add_argument("--release", type=Path, required=True)
    p.set_defaults(func=unpublish)
    p = fs.add_parser("forget", help="clear a dead device's retained status and metrics")
    _broker_args(p)
    p.add_argument("device")
    p.set_defaults(func=forget)
    p = fs.add_parser("publish", help="publish a signed release to the broker")
    _broker_args(p)
    p.add_argument("--release", type=Path)
    p.add_argument("--trust-file", type=Path, help="publish a rotated trust file instead")
    p.add_argument("--rollout", type=Path, help="publish a signed rollout directive instead")
    p.set_defaults(func=publish)
    p = fs.add_parser("status", help="one row per device")
    _broker_args(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--wait", type=float, default=2.0)
    p.set_defaults(func=status)
    for extra in ("edge_sentiment.fleet.exporter", "edge_sentiment.fleet.samples_cli",
                  "edge_sentiment.fleet.rollout_cli"):
        try:
            __import__(extra, fromlist=["add_parser"]).add_parser(fs, _broker_args)
        except ImportError:
            pass


def stop_event() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the long-running fleet commands wait on it."""
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    return done


def _settings(args: argparse.Namespace) -> Any:
    """BrokerSettings refuses a URL with credentials in it (--username, --password-file)."""
    from ..protocol import BrokerSettings

    password = args.password_file.read_text().strip() if args.password_file else None
    return BrokerSettings(args.broker, args.tls_ca, args.tls_cert, args.tls_key, args.username,
                          password)


def keygen(args: argparse.Namespace) -> int:
    from .ops import key_id_of
    from .ops import keygen as make

    key, pub = make(args.out, args.name)
    print(json.dumps({"private": str(key), "public": str(pub), "keyid": key_id_of(pub)}))
    return 0


def trust(args: argparse.Namespace) -> int:
    from .ops import trust_file

    doc = trust_file(args.pubkeys, args.threshold, args.out, rollout_pubs=args.rollout_pubs,
                     rollout_threshold=args.rollout_threshold)
    print(json.dumps({"trust": str(args.out), "keys": sorted(doc["signed"]["keys"])}))
    return 0


def rotate(args: argparse.Namespace) -> int:
    from ..protocol import parse_trust, rotate_trust
    from .ops import trust_file

    current = parse_trust(json.loads(args.current_trust.read_text()), str(args.current_trust))
    doc = trust_file(args.pubkeys, args.threshold, args.out, version=current.version + 1,
                     signing_keys=args.keys)
    rotate_trust(current, doc)  # check locally what devices will check
    print(json.dumps({"trust": str(args.out), "version": current.version + 1}))
    return 0


def sign(args: argparse.Namespace) -> int:
    from .ops import sign_release

    doc = sign_release(args.bundle, args.keys, args.version, args.channel, args.out,
                       expires_days=args.expires_days, profiles=args.profiles, arches=args.arches,
                       chunk_size=args.chunk_size, force=args.force)
    s = doc["signed"]
    print(json.dumps({"release": str(args.out), "version": s["version"], "channel": s["channel"],
                      "bytes": s["bundle_size"], "chunks": len(s["chunks"])}))
    return 0


def unpublish(args: argparse.Namespace) -> int:
    from .ops import unpublish_release

    print(json.dumps(unpublish_release(_settings(args), args.release, args.prefix)))
    return 0


def forget(args: argparse.Namespace) -> int:
    from .ops import forget_device

    forget_device(_settings(args), args.device, args.prefix)
    print(json.dumps({"forgotten": args.device}))
    return 0


def rollout_sign(args: argparse.Namespace) -> int:
    from .ops import sign_directive

    doc = sign_directive(args.key, args.release, args.out, sequence=args.sequence,
                         share=args.share, salt=args.salt, state=args.state,
                         revoked=args.revoked, expires_hours=args.expires_hours)
    s = doc["signed"]
    print(json.dumps({"rollout": str(args.out), "channel": s["channel"],
                      "sequence": s["sequence"], "share": s["share"], "state": s["state"]}))
    return 0


def publish(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from .ops import publish_directive, publish_release, publish_trust

    if args.rollout:
        print(json.dumps(publish_directive(_settings(args), args.rollout, args.prefix)))
        return 0
    if args.trust_file:
        publish_trust(_settings(args), args.trust_file, args.prefix)
        print(json.dumps({"published_trust": str(args.trust_file)}))
        return 0
    if not args.release:
        raise InputError("give --release DIR (or --trust-file FILE)")
    print(json.dumps(publish_release(_settings(args), args.release, args.prefix)))
    return 0


def status(args: argparse.Namespace) -> int:
    from .ops import fleet_status

    rows = fleet_status(_settings(args), args.prefix, args.wait)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'device':<20} {'online':<7} {'model':<10} {'p95 ms':>8} {'drift':>7}")
    for r in rows:
        print(f"{r['device']:<20} {r['online']!s:<7} {r['model_version'] or '-':<10} "
              f"{r['p95_ms'] if r['p95_ms'] is not None else '-':>8} "
              f"{r['drift_class_psi'] if r['drift_class_psi'] is not None else '-':>7}")
    return 0
