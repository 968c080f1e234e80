"""``fleet rollout start|status|pause|resume|abort`` and ``fleet controller``."""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError

DEFAULT_DB = "fleet-controller.sqlite"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smh]?)$")


def duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``10m`` or ``1.5h``."""
    m = _DURATION.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30s, 10m or 1h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def phases(text: str) -> tuple[float, ...]:
    """``1,10,50,100`` (percent) as shares."""
    try:
        return tuple(float(p) / 100 for p in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: phases are percents, e.g. 1,10,100") from exc


def add_parser(fs: Any, broker_args: Callable[[argparse.ArgumentParser], None]) -> None:
    p = fs.add_parser("rollout", help="staged rollouts run by fleet controller")
    rs = p.add_subparsers(dest="rollout_command", required=True)
    s = rs.add_parser("start", help="plan a staged rollout of a signed release")
    s.add_argument("--db", type=Path, default=Path(DEFAULT_DB))
    s.add_argument("--release", type=Path, required=True, help="a folder fleet sign wrote")
    s.add_argument("--phases", type=phases, default=(0.01, 0.1, 0.5, 1.0),
                   help="percent of devices per phase (default 1,10,50,100)")
    s.add_argument("--bake", type=duration, default=600.0, help="per phase (default 10m)")
    s.add_argument("--healthy-share", type=float, default=0.9,
                   help="share of the phase's devices that must report healthy to advance")
    s.add_argument("--abort-if-failed", type=float, default=0.2, dest="max_failure_share",
                   help="abort when more than this share of the devices that tried failed")
    s.add_argument("--min-devices", type=int, default=3,
                   help="devices that must have tried before failures can abort")
    s.add_argument("--salt", help="bucket salt (default: the release version)")
    s.add_argument("--first-sequence", type=int, default=0,
                   help="directive sequence to start above (the retained one is also read)")
    s.set_defaults(func=start)
    st = rs.add_parser("status", help="each rollout's phase, state and decisions")
    st.add_argument("--db", type=Path, default=Path(DEFAULT_DB))
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=status)
    for what in ("pause", "resume", "abort"):
        r = rs.add_parser(what, help=f"{what} the channel's rollout (applied by the controller)")
        r.add_argument("--db", type=Path, default=Path(DEFAULT_DB))
        r.add_argument("--channel", default="stable")
        r.set_defaults(func=request, what=what)
    m = fs.add_parser("simulate", help="many simulated devices, for the fleet side at scale")
    broker_args(m)
    m.add_argument("--devices", type=int, default=1000)
    m.add_argument("--seconds", type=float, default=60.0)
    m.add_argument("--channel", default="stable")
    m.add_argument("--version", default="0.0.1", help="the version they start on")
    m.add_argument("--fail-share", type=float, default=0.0,
                   help="share of devices whose health window fails after an install")
    m.add_argument("--health-delay", type=float, default=1.0, help="seconds to a verdict")
    m.add_argument("--metrics-interval", type=float, default=60.0)
    m.add_argument("--id-prefix", default="sim-")
    m.set_defaults(func=simulate)
    c = fs.add_parser("controller", help="run staged rollouts against the devices' reports")
    broker_args(c)
    c.add_argument("--db", type=Path, default=Path(DEFAULT_DB))
    c.add_argument("--key", type=Path, required=True, help="the trust's rollout private key")
    c.add_argument("--tick", type=float, default=1.0, help="seconds between decisions")
    c.add_argument("--port", type=int, help="serve Prometheus metrics on this port")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--run-for", type=float, help="stop after this many seconds")
    c.set_defaults(func=controller)


def start(args: argparse.Namespace) -> int:
    from ..protocol.release import Release
    from .controller import ControllerDB
    from .rollout_plan import Plan

    try:
        rel = Release.from_signed(json.loads((args.release / "manifest.json").read_text())["signed"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{args.release}: not a release folder (fleet sign writes one): "
                          f"{exc}") from exc
    try:
        plan = Plan(rel.channel, rel.version, rel.bundle_sha256, args.salt or rel.version,
                    args.phases, args.bake, args.healthy_share, args.max_failure_share,
                    args.min_devices)
    except ValueError as exc:
        raise InputError(f"fleet rollout start: {exc}") from exc
    ControllerDB(args.db).start(plan, args.first_sequence)
    print(json.dumps({"channel": plan.channel, "version": plan.version, "phases": plan.phases,
                      "bake_s": plan.bake_s, "db": str(args.db)}))
    return 0


def status(args: argparse.Namespace) -> int:
    from .controller import ControllerDB

    db = ControllerDB(args.db)
    rows: list[dict[str, Any]] = [
        {"channel": p.channel, "version": p.version, "state": g.state, "phase": g.phase,
         "share": p.phases[g.phase], "sequence": g.sequence, "reason": g.reason, "pending": r,
         "outcomes": db.outcomes(p.version)} for p, g, r in db.rollouts()]
    if args.json:
        print(json.dumps({"rollouts": rows, "decisions": db.decisions()}))
        return 0
    for row in rows:
        why = f" - {row['reason']}" if row["reason"] else ""
        pending = f" (request {row['pending']} pending)" if row["pending"] else ""
        print(f"{row['channel']}: {row['version']} {row['state']} phase {row['phase']} "
              f"({row['share']:.0%}){why}{pending}")
    return 0


def request(args: argparse.Namespace) -> int:
    from .controller import ControllerDB

    ControllerDB(args.db).request(args.channel, args.what)
    print(json.dumps({"channel": args.channel, "request": args.what}))
    return 0


class RolloutCollector:
    def __init__(self, db: Any) -> None:
        self.db = db

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        share = GaugeMetricFamily("edge_fleet_rollout_share", "the current phase's share",
                                  labels=["channel", "version", "state"])
        outcomes = GaugeMetricFamily("edge_fleet_rollout_devices", "devices per last event",
                                     labels=["channel", "version", "event"])
        decisions = CounterMetricFamily("edge_fleet_rollout_decisions", "controller decisions",
                                        labels=["channel", "version", "kind"])
        for plan, progress, _ in self.db.rollouts():
            share.add_metric([plan.channel, plan.version, progress.state],
                             plan.phases[progress.phase])
            counts: dict[str, int] = {}
            for event, _reason in self.db.outcomes(plan.version).values():
                counts[event] = counts.get(event, 0) + 1
            for event, n in counts.items():
                outcomes.add_metric([plan.channel, plan.version, event], n)
        kinds: dict[tuple[str, str, str], int] = {}
        for d in self.db.decisions():
            key = (d["channel"], d["version"], d["kind"])
            kinds[key] = kinds.get(key, 0) + 1
        for key, n in kinds.items():
            decisions.add_metric(list(key), n)
        yield from (share, outcomes, decisions)


def simulate(args: argparse.Namespace) -> int:
    from .cli import _settings, stop_event
    from .simulate import Simulator

    if args.devices < 1 or not 0 <= args.fail_share <= 1:
        raise InputError("--devices must be >= 1 and --fail-share in [0, 1]")
    sim = Simulator(_settings(args), args.prefix, args.devices, args.version, args.channel,
                    args.fail_share, args.health_delay, id_prefix=args.id_prefix)
    sim.start()
    done = stop_event()
    end, next_metrics = time.monotonic() + args.seconds, 0.0
    while not done.wait(0.05) and time.monotonic() < end:
        sim.step()
        if time.monotonic() >= next_metrics:
            sim.metrics()
            next_metrics = time.monotonic() + args.metrics_interval
    sim.stop()
    versions: dict[str, int] = {}
    for dev in sim.devices.values():
        versions[dev.version] = versions.get(dev.version, 0) + 1
    print(json.dumps({"devices": args.devices, "published": sim.published, "versions": versions}))
    return 0


def controller(args: argparse.Namespace) -> int:
    from .cli import _settings, stop_event
    from .controller import Controller, ControllerDB

    db = ControllerDB(args.db)
    ctl = Controller(_settings(args), args.prefix, db, args.key)
    server = None
    if args.port:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()
        registry.register(RolloutCollector(db))  # type: ignore[arg-type]
        server, _ = start_http_server(args.port, addr=args.host, registry=registry)
    ctl.start()
    done = stop_event()
    deadline = None if args.run_for is None else time.monotonic() + args.run_for
    while not done.wait(args.tick):
        ctl.tick()
        if deadline is not None and time.monotonic() >= deadline:
            break
    ctl.stop()
    if server is not None:
        server.shutdown()
    return 0
