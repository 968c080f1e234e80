"""``edge-sentiment fleet exporter``: every device's MQTT status and metrics as Prometheus metrics.

Subscribes to ``<prefix>/devices/+/{status,metrics,update,alerts}`` and serves the latest
figures per device on ``/metrics`` (needs ``prometheus-client``, from the ``serve`` extra).
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ..protocol import DeviceTopic, Topics, connect, device_of
from ..protocol.messages import parse

log = logging.getLogger(__name__)


class FleetState:
    """The latest message of each kind per device, plus update and alert counters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.status: dict[str, dict[str, Any]] = {}
        self.metrics: dict[str, dict[str, Any]] = {}
        self.updates: dict[tuple[str, str, str], int] = {}
        self.alerts: dict[tuple[str, str], int] = {}
        self.rejected: dict[tuple[str, str], int] = {}  # (device, kind) -> dropped messages
        self.predictions: dict[str, int] = {}  # device -> predictions over every window seen
        self.seen_seqs: dict[str, list[Any]] = {}  # device -> recent metrics seqs (duplicates)

    def on_message(self, topic: str, payload: bytes) -> None:
        """Keep a device's checked message (``schema.parse``); drop and count a bad one. Never
        raises: it runs on the MQTT thread, which must outlive any one device's messages."""
        where = device_of(topic)
        if where is None:
            return
        device, kind = where
        try:
            body = parse(kind, payload)
        except Exception:
            log.exception("checking a message on %s failed", topic)
            body = None
        with self.lock:
            if body is None:
                self.rejected[(device, kind)] = self.rejected.get((device, kind), 0) + 1
                return
            if kind == "status":
                self.status[device] = body
            elif kind == "metrics":
                self.metrics[device] = body
                self._count(device, body)
            elif kind == "update":
                key = (device, str(body.get("event")), str(body.get("reason", "")))
                self.updates[key] = self.updates.get(key, 0) + 1
            elif kind == "alerts":
                akey = (device, str(body.get("alert")))
                self.alerts[akey] = self.alerts.get(akey, 0) + 1

    def _count(self, device: str, body: dict[str, Any]) -> None:
        """Add a window's count to the device's running total, once per ``seq`` (a redelivered
        QoS 1 message or a replayed outbox row is not counted twice)."""
        seqs = self.seen_seqs.setdefault(device, [])
        seq = body.get("seq")
        if seq is not None and seq in seqs:
            return
        if seq is not None:
            seqs.append(seq)
            del seqs[:-256]
        count = body.get("count")
        if isinstance(count, (int, float)) and count >= 0:
            self.predictions[device] = self.predictions.get(device, 0) + int(count)


class FleetCollector:
    def __init__(self, state: FleetState) -> None:
        self.state = state

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.state
        online = GaugeMetricFamily("edge_fleet_device_online", "1 if the device is online",
                                   labels=["device"])
        model = GaugeMetricFamily("edge_fleet_model_info", "model per device",
                                  labels=["device", "model_version", "backend", "profile"])
        gauges: dict[str, tuple[Any, Callable[[dict[str, Any]], Any]]] = {
            "p95": (GaugeMetricFamily("edge_fleet_latency_p95_ms", "p95 latency, last window",
                                      labels=["device"]), lambda m: m.get("p95")),
            "thr": (GaugeMetricFamily("edge_fleet_throughput_per_s", "texts per second",
                                      labels=["device"]), lambda m: m.get("throughput_per_s")),
            "psi": (GaugeMetricFamily("edge_fleet_drift_class_psi", "class-mix PSI",
                                      labels=["device"]), lambda m: m.get("class_psi")),
            "err": (GaugeMetricFamily("edge_fleet_errors", "errors in the last window",
                                      labels=["device"]), lambda m: m.get("errors")),
            "cnt": (GaugeMetricFamily("edge_fleet_window_predictions",
                                      "predictions in the last window", labels=["device"]),
                    lambda m: m.get("count")),
        }
        mix = GaugeMetricFamily("edge_fleet_class_share", "class share, last window",
                                labels=["device", "label"])
        truth = {k: GaugeMetricFamily(f"edge_fleet_online_{k}", f"online {k} from app feedback "
                                       "over the device's last labelled outcomes",
                                       labels=["device", "model_version"])
                  for k in ("accuracy", "macro_f1", "outcomes")}
        updates = CounterMetricFamily("edge_fleet_update_events", "update events",
                                      labels=["device", "event", "reason"])
        alerts = CounterMetricFamily("edge_fleet_alerts", "alerts", labels=["device", "alert"])
        predictions = CounterMetricFamily("edge_fleet_predictions",
                                          "predictions over every window received",
                                          labels=["device"])
        rejected = CounterMetricFamily("edge_fleet_rejected_messages",
                                       "device messages dropped as malformed",
                                       labels=["device", "kind"])
        with s.lock:
            for dev, st in s.status.items():
                online.add_metric([dev], 1.0 if st.get("state") == "online" else 0.0)
                model.add_metric([dev, str(st.get("model_version")), str(st.get("backend")),
                                  str(st.get("profile"))], 1.0)
            for dev, m in s.metrics.items():
                for fam, get in gauges.values():
                    value = get(m)
                    if isinstance(value, (int, float)):
                        fam.add_metric([dev], float(value))
                for key, fam in truth.items():
                    if isinstance(m.get(key), (int, float)):
                        fam.add_metric([dev, str(m.get("model_version"))], float(m[key]))
                total = sum((m.get("labels") or {}).values()) or 0
                for label, n in (m.get("labels") or {}).items():
                    if total:
                        mix.add_metric([dev, label], n / total)
            for (dev, event, reason), n in s.updates.items():
                updates.add_metric([dev, event, reason], n)
            for (dev, alert), n in s.alerts.items():
                alerts.add_metric([dev, alert], n)
            for dev, n in s.predictions.items():
                predictions.add_metric([dev], n)
            for (dev, kind), n in s.rejected.items():
                rejected.add_metric([dev, kind], n)
        yield from (online, model, mix, updates, alerts, rejected, predictions,
                    *truth.values(), *(f for f, _ in gauges.values()))


def add_parser(fs: Any, broker_args: Callable[[argparse.ArgumentParser], None]) -> None:
    p = fs.add_parser("exporter", help="Prometheus exporter of every device's metrics")
    broker_args(p)
    p.add_argument("--port", type=int, default=9108)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--run-for", type=float, help="stop after this many seconds")
    p.set_defaults(func=run)


def start(broker: Any, prefix: str, port: int, host: str = "127.0.0.1") -> tuple[Any, Any, Any]:
    """Subscribe and serve; returns (mqtt client, http server, state)."""
    from prometheus_client import CollectorRegistry, start_http_server

    state = FleetState()
    registry = CollectorRegistry()
    registry.register(FleetCollector(state))  # type: ignore[arg-type]
    server, _ = start_http_server(port, addr=host, registry=registry)
    client = connect(broker)
    client.on_message = lambda c, u, msg: state.on_message(msg.topic, msg.payload)
    client.subscribe([(Topics(prefix).all_devices(kind), 1) for kind in DeviceTopic])
    return client, server, state


def run(args: argparse.Namespace) -> int:
    from .cli import _settings, stop_event

    client, server, _ = start(_settings(args), args.prefix, args.port, args.host)
    stop_event().wait(args.run_for)
    client.disconnect()
    client.loop_stop()
    server.shutdown()
    return 0
