"""Log set-up for the CLI: text for people, one JSON object per line for journald and ELK.

``--log-format json`` writes every record as a JSON object on stderr with these fields, and no
others (``FIELDS``): ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``msg``
and, where the record has them, ``event``, ``device``, ``model``, ``backend``, ``url``,
``broker`` and ``exc`` (the exception type and its one-line message). Messages never carry the
texts being classified or any token: the library logs versions, paths, reasons and counts only.
The ``ready`` line of ``serve`` and ``agent`` is a record with ``event: "ready"``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")
FIELDS = ("ts", "level", "logger", "msg", "event", "device", "model", "backend", "url",
          "broker", "exc")
EXTRA_FIELDS = FIELDS[4:-1]

_format = "text"
ready_log = logging.getLogger("edge_sentiment.ready")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, limited to ``FIELDS``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        doc: dict[str, Any] = {"ts": f"{stamp}.{int(record.msecs):03d}Z",
                               "level": record.levelname.lower(), "logger": record.name,
                               "msg": record.getMessage()}
        for key in EXTRA_FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                doc[key] = str(value)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            doc["exc"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return json.dumps(doc, ensure_ascii=False)


def configure(fmt: str = "text", level: str | None = None, debug: bool = False) -> None:
    """Set the root handler once per process (the CLI calls this before any command)."""
    global _format
    _format = fmt
    name = "debug" if debug else (level or ("info" if fmt == "json" else "warning"))
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(name.upper())
    ready_log.setLevel(logging.INFO)


def model_fields(info: Any) -> dict[str, str]:
    """``model`` and ``backend`` of a ``ClassifierInfo``, as the ready lines name them."""
    return {"model": f"{info.bundle['name']} {info.bundle['version']}",
            "backend": f"{info.backend}/{info.provider}"}


def ready(line: str, **fields: str) -> None:
    """The one start-up line: plain text on stderr, or a JSON record with ``event: ready``."""
    if _format == "json":
        ready_log.info(line, extra={"event": "ready", **fields})
    else:
        print(line, file=sys.stderr, flush=True)
