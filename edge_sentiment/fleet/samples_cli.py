"""``fleet collect``, ``fleet samples forget`` and ``fleet dataset export`` (``samples.py``)."""

from __future__ import annotations

import argparse
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..protocol import Topics, connect
from ..protocol.topics import DEVICE_ID

DEFAULT_DB = "sqlite:///fleet-samples.sqlite"
log = logging.getLogger(__name__)


def add_parser(fs: Any, broker_args: Callable[[argparse.ArgumentParser], None]) -> None:
    p = fs.add_parser("collect", help="store the devices' uploaded samples in a database")
    broker_args(p)
    p.add_argument("--db", default=DEFAULT_DB, help=f"SQLAlchemy URL (default {DEFAULT_DB})")
    p.add_argument("--run-for", type=float, help="stop after this many seconds")
    p.set_defaults(func=collect)
    p = fs.add_parser("samples", help="the fleet's stored samples")
    p.add_argument("action", choices=("forget",))
    p.add_argument("device")
    p.add_argument("--db", default=DEFAULT_DB)
    p.set_defaults(func=forget)
    p = fs.add_parser("dataset", help="export the stored samples as convert data")
    p.add_argument("action", choices=("export",))
    p.add_argument("--db", default=DEFAULT_DB)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--source", default="fleet", help="the labelled source's folder name")
    p.set_defaults(func=export)


class Collector:
    """Checks and stores each sample message; counts what it did. Never raises on a message."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.counts = {"stored": 0, "duplicates": 0, "rejected": 0, "errors": 0}
        self.lock = threading.Lock()

    def on_message(self, topic: str, payload: bytes) -> None:
        from .samples import check_sample

        device = topic.rsplit("/", 1)[-1]
        body = check_sample(payload) if DEVICE_ID.match(device) else None
        with self.lock:
            if body is None:
                self.counts["rejected"] += 1
                return
            try:
                stored = self.db.add(device, body)
            except Exception:  # a database fault costs this sample, never the MQTT thread
                log.exception("storing a sample from %s failed", device)
                self.counts["errors"] += 1
                return
            self.counts["stored" if stored else "duplicates"] += 1


def start(settings: Any, prefix: str, db_url: str) -> tuple[Any, Collector]:
    from .samples import SampleDB

    collector = Collector(SampleDB(db_url))
    client = connect(settings)
    client.on_message = lambda c, u, msg: collector.on_message(msg.topic, msg.payload)
    client.subscribe(Topics(prefix).all_samples(), qos=1)
    return client, collector


def collect(args: argparse.Namespace) -> int:
    from .cli import _settings, stop_event

    client, collector = start(_settings(args), args.prefix, args.db)
    stop_event().wait(args.run_for)
    client.disconnect()
    client.loop_stop()
    print(json.dumps(collector.counts))
    return 0


def forget(args: argparse.Namespace) -> int:
    from .samples import SampleDB

    print(json.dumps({"device": args.device, "forgotten": SampleDB(args.db).forget(args.device)}))
    return 0


def export(args: argparse.Namespace) -> int:
    from .samples import SampleDB
    from .samples import export as write

    print(json.dumps(write(SampleDB(args.db).rows(), args.out, args.source)))
    return 0
