"""``edge-sentiment serve``: the REST API under uvicorn, with hot swap from an agent's slots."""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path
from typing import Any

from .. import logs
from ..backends import RUNTIME_CHOICES
from ..cli_args import positive_int

log = logging.getLogger(__name__)


def port_number(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be <= 65535, got {value}")
    return value


def check_port(host: str, port: int) -> None:
    """A port already in use is a usage error (exit 2), found before the model loads."""
    import socket

    from ..errors import ConfigError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="local REST API (FastAPI + uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port_number, default=8080)
    p.add_argument("--token-file", type=Path, help="require this bearer token")
    p.add_argument("--bundle", help="bundle directory or .tar (default: packaged)")
    p.add_argument("--state-dir", type=Path,
                   help="serve the agent's current slot and hot-swap when it changes")
    p.add_argument("--runtime", default="auto", choices=RUNTIME_CHOICES)
    p.add_argument("--threads", type=positive_int, help="inference threads (default: profile)")
    p.add_argument("--max-batch", type=positive_int, default=64)
    p.add_argument("--max-chars", type=positive_int, default=20_000)
    p.add_argument("--public-docs", action="store_true",
                   help="serve /docs and /openapi.json without the token")
    p.add_argument("--header-timeout", type=positive_int, default=10,
                   help="seconds a client has to send a request head (default 10)")
    p.add_argument("--body-timeout", type=positive_int, default=30,
                   help="seconds a client has to send a request body (default 30)")
    p.add_argument("--max-connections", type=positive_int, default=512,
                   help="open connections and tasks before new requests get 503 (uvicorn "
                        "limit_concurrency)")
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
    from .protocol import protocol_with_timeout

    token = None
    if args.token_file:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"--token-file {args.token_file}: {exc}") from exc
        if not token:
            raise ConfigError(f"--token-file {args.token_file} is empty")
    check_port(args.host, args.port)
    source = args.state_dir / "current" if args.state_dir else args.bundle
    clf = SentimentClassifier.load(source, runtime=args.runtime, threads=args.threads)
    stop = threading.Event()
    if args.state_dir:
        threading.Thread(target=watch_slots, args=(clf, args.state_dir / "current", args.runtime, stop),
                         daemon=True).start()
    app = create_app(clf, token, Limits(args.max_batch, args.max_chars, args.dynamic_batching,
                                        args.public_docs, float(args.body_timeout)))
    url = f"http://{args.host}:{args.port}"
    fields = logs.model_fields(clf.info)
    ready = f"edge-sentiment serve: ready on {url} model {fields['model']} on {fields['backend']}"

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                logs.ready(ready, url=url, **fields)

    # uvicorn's own limits: idle keep-alive 5 s, request heads of at most 16 kB (h11), at most
    # --max-connections connections; the head deadline is ours (protocol.py).
    # log_config/log_level None: uvicorn's loggers go to our root handler and level.
    Server(uvicorn.Config(app, host=args.host, port=args.port, log_level=None, log_config=None,
                          access_log=False, timeout_keep_alive=5,
                          h11_max_incomplete_event_size=16 * 1024,
                          limit_concurrency=args.max_connections,
                          http=protocol_with_timeout(float(args.header_timeout)))).run()
    stop.set()
    return 0
