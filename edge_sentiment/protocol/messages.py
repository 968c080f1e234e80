"""Device messages: their schema ids (the agent writes them) and what the fleet side accepts
(the exporter and ``fleet status`` read them).

A device can write its own topics (the documented ACL), so a malformed or hostile message must
cost only itself: ``parse`` drops it (returns None) and the reader counts it per device, never
raises. Pure: documents in, documents (or None) out."""

from __future__ import annotations

import json
import math
from typing import Any

from .topics import DeviceTopic

SCHEMAS = {DeviceTopic.STATUS: "edge-sentiment/status/1",
           DeviceTopic.METRICS: "edge-sentiment/metrics/1",
           DeviceTopic.UPDATE: "edge-sentiment/update/1",
           DeviceTopic.ALERTS: "edge-sentiment/alert/1"}
SAMPLE_SCHEMA = "edge-sentiment/sample/1"
MAX_PAYLOAD = 64 * 1024
MAX_TEXT = 64
LABEL_LIMIT = 16


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _text(v: Any) -> str | None:
    return v[:MAX_TEXT] if isinstance(v, str) else None


def _table(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def parse(kind: str, payload: bytes) -> dict[str, Any] | None:
    """The checked body of one device message, or None when it is not acceptable."""
    if len(payload) > MAX_PAYLOAD:
        return None
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    check = {"status": _status, "metrics": _metrics, "update": _update, "alerts": _alert}.get(kind)
    return check(body) if check else None


def _status(b: dict[str, Any]) -> dict[str, Any] | None:
    state = _text(b.get("state"))
    if state is None:
        return None
    return {"state": state, **{k: _text(b.get(k)) for k in
                               ("model_version", "backend", "profile", "channel",
                                "last_update", "last_reason")}}


def _metrics(b: dict[str, Any]) -> dict[str, Any] | None:
    labels = _table(b.get("labels"))
    counts = {str(k)[:MAX_TEXT]: _num(v) for k, v in list(labels.items())[:LABEL_LIMIT]}
    if any(v is None or v < 0 for v in counts.values()):
        return None
    raw = {"count": b.get("count"), "errors": b.get("errors"),
           "throughput_per_s": b.get("throughput_per_s"),
           "p95": _table(b.get("latency_ms")).get("p95"),
           "class_psi": _table(b.get("drift")).get("class_psi"), "seq": b.get("seq")}
    outcomes = _table(b.get("outcomes"))
    raw |= {"accuracy": outcomes.get("accuracy"), "macro_f1": outcomes.get("macro_f1"),
            "outcomes": outcomes.get("count")}
    out: dict[str, Any] = {k: _num(v) for k, v in raw.items()}
    if out["count"] is None or any(raw[k] is not None and out[k] is None for k in raw):
        return None  # a field that is there must have the right type
    if any(out[k] is not None and not 0 <= out[k] <= 1 for k in ("accuracy", "macro_f1")):
        return None
    return {**out, "labels": counts, "model_version": _text(b.get("model_version"))}


def _update(b: dict[str, Any]) -> dict[str, Any] | None:
    event = _text(b.get("event"))
    return None if event is None else {"event": event, "reason": _text(b.get("reason")) or ""}


def _alert(b: dict[str, Any]) -> dict[str, Any] | None:
    alert = _text(b.get("alert"))
    return None if alert is None else {"alert": alert}
