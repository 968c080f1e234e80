"""``edge-sentiment serve``: the REST API under uvicorn, with hot swap from an agent's slots."""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="local REST API (FastAPI + uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--token-file", type=Path, help="require this bearer token")
    p.add_argument("--bundle", help="bundle directory or .tar (default: packaged)")
    p.add_argument("--state-dir", type=Path,
                   help="serve the agent's current slot and hot-swap when it changes")
    p.add_argument("--runtime", default="auto", choices=["auto", "onnx", "tflite"])
    p.add_argument("--threads", type=int, help="inference threads (default: profile)")
    p.add_argument("--max-batch", type=int, default=64)
    p.add_argument("--max-chars", type=int, default=20_000)
    p.add_argument("--no-dynamic-batching", dest="dynamic_batching", action="store_false",
                   help="run each request alone (default: concurrent requests share a model call)")
    p.set_defaults(func=run)


def watch_slots(clf: Any, current: Path, runtime: str, stop: threading.Event,
                interval: float = 2.0) -> None:
    """Swap ``clf`` to the agent's ``current`` slot whenever the link changes target."""
    from ..classifier import SentimentClassifier
    from ..errors import EdgeSentimentError

    seen = current.resolve()
    while not stop.wait(interval):
        target = current.resolve()
        if target == seen:
            continue
        try:
            clf.swap(SentimentClassifier.load(current, runtime=runtime))
            seen = target
        except EdgeSentimentError as exc:
            log.warning("not swapping to %s: %s", target, exc)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..classifier import SentimentClassifier
    from ..errors import ConfigError
    from .app import Limits, create_app

    token = None
    if args.token_file:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"--token-file {args.token_file}: {exc}") from exc
        if not token:
            raise ConfigError(f"--token-file {args.token_file} is empty")
    source = args.state_dir / "current" if args.state_dir else args.bundle
    clf = SentimentClassifier.load(source, runtime=args.runtime, threads=args.threads)
    stop = threading.Event()
    if args.state_dir:
        threading.Thread(target=watch_slots, args=(clf, args.state_dir / "current", args.runtime, stop),
                         daemon=True).start()
    app = create_app(clf, token, Limits(args.max_batch, args.max_chars, args.dynamic_batching))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    stop.set()
    return 0
