"""``edge-sentiment agent``: run the fleet agent in the foreground until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from .. import logs

log = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("agent", help="report metrics and take signed updates over MQTT")
    p.add_argument("--config", type=Path, help="agent TOML (flags override it)")
    p.add_argument("--broker", help="mqtt://host:1883 or mqtts://host:8883")
    p.add_argument("--device-id")
    p.add_argument("--state-dir", type=Path)
    p.add_argument("--trust", type=Path, help="trust file (fleet trust)")
    p.add_argument("--channel")
    p.add_argument("--prefix")
    p.add_argument("--metrics-interval", type=float, dest="metrics_interval_s")
    p.add_argument("--run-for", type=float, help="stop after this many seconds (tests, demos)")
    p.add_argument("--write-config", type=Path, metavar="PATH",
                   help="validate these settings, write them as agent TOML (0600) and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..classifier import SentimentClassifier
    from ..slots import SlotStore
    from .config import load_config
    from .core import Agent

    overrides = {"broker": args.broker, "device_id": args.device_id, "state_dir": args.state_dir,
                 "trust": args.trust, "channel": args.channel, "prefix": args.prefix,
                 "metrics_interval_s": args.metrics_interval_s}
    cfg = load_config(args.config, overrides)
    if args.write_config is not None:
        write_config(cfg, args.write_config)
        print(f"wrote {args.write_config}")
        return 0
    slots = SlotStore(cfg.state_dir)
    slots.ensure(cfg.bundle)
    _escape_crash_loop(cfg, slots)
    clf = SentimentClassifier.load(slots.current_link, runtime=cfg.runtime, profile=cfg.profile)
    agent = Agent(clf, cfg)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    agent.start()
    broker = redact_url(cfg.broker)
    fields = logs.model_fields(clf.info)
    logs.ready(f"edge-sentiment agent: ready, broker {broker}, device {cfg.device_id}, "
               f"model {fields['model']} on {fields['backend']}", broker=broker,
               device=cfg.device_id, **fields)
    _wait(done, args.run_for)
    log.info("agent %s stopping", cfg.device_id)
    agent.stop()
    return 0


def write_config(cfg: Any, path: Path) -> None:
    """The config's non-default settings as TOML, written by a TOML library (values are
    escaped by it, never formatted into text), readable by its owner only; an existing file is
    left alone."""
    from ..errors import ConfigError

    try:
        import tomli_w
    except ImportError as exc:
        from ..errors import missing_extra

        raise missing_extra("tomli-w", "agent") from exc
    values = {k: (str(v) if isinstance(v, Path) else v)
              for k, v in cfg.model_dump(exclude_defaults=True).items()}
    data = tomli_w.dumps(values).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"--write-config {path}: exists; edit it or remove it first") from exc
    except OSError as exc:
        raise ConfigError(f"--write-config {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(b"# edge-sentiment agent config; see docs/agent.md for every key.\n" + data)


def _escape_crash_loop(cfg: Any, slots: Any) -> None:
    """A model on trial that keeps the process from staying up: step back before loading it
    (the agent then reports the rollback, reason ``unhealthy``)."""
    from ..errors import UpdateError
    from .trials import TrialKeeper, rules_of

    keeper = TrialKeeper(cfg.state_dir, rules_of(cfg))
    if keeper.trial is None or not keeper.crash_looping() \
            or slots.current_version() != keeper.trial.version:
        return
    try:
        slots.step_back({"runtime": cfg.runtime, "profile": cfg.profile}, ())
        log.warning("model %s crash-looped on trial: stepped back to %s", keeper.trial.version,
                    slots.current_version())
    except UpdateError as exc:
        log.warning("model %s crash-looped on trial, and no step back: %s",
                    keeper.trial.version, exc)


def redact_url(url: str) -> str:
    """A broker URL without its user info, for logs and the ready line."""
    scheme, sep, rest = url.partition("://")
    host = rest.rpartition("@")[2]
    return f"{scheme}{sep}{host}" if sep else host


def _wait(done: threading.Event, seconds: float | None) -> None:
    """Wait for ``done`` or ``seconds``, waking every half second.

    A signal that the kernel hands to another thread only runs its Python handler when the main
    thread next executes bytecode, so one long ``done.wait()`` could sit on a SIGTERM until it
    timed out; short waits handle it within half a second.
    """
    deadline = None if seconds is None else time.monotonic() + seconds
    while not done.is_set():
        left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
        if left <= 0:
            return
        done.wait(left)
