"""The fleet agent: status, metrics, alerts and signed updates for one device.

Use it standalone (``edge-sentiment agent``) or inside an app::

    clf = SentimentClassifier.load(...)
    agent = Agent(clf, config)
    agent.start()      # the app's own classify() calls now feed the metrics
    ...
    agent.stop()
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import __version__
from ..bench import peak_rss_mb
from ..capture import Capture, CaptureLimits, SampleStore
from ..classifier import SentimentClassifier
from ..errors import UpdateReason
from ..hardware import cpu_temperature
from ..outcomes import Outcome
from ..protocol import DeviceTopic, Topics
from ..protocol.messages import SAMPLE_SCHEMA, SCHEMAS
from ..slots import SlotStore
from .config import AgentConfig
from .health import Verdict
from .outbox import Outbox
from .transport import Link
from .trials import TrialKeeper, rules_of
from .updater import Updater
from .watchdog import Notifier

log = logging.getLogger(__name__)


def _rss_now_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        import os

        return round(pages * os.sysconf("SC_PAGE_SIZE") / 1e6, 1)
    except (OSError, ValueError, IndexError):
        return round(peak_rss_mb(), 1)


def capture_limits(cfg: AgentConfig) -> CaptureLimits:
    return CaptureLimits(max_samples=cfg.capture_max_samples, max_bytes=cfg.capture_max_bytes,
                         max_age_s=cfg.capture_max_age_s, min_chars=cfg.capture_min_chars,
                         low_confidence_rate=cfg.capture_low_confidence_rate,
                         drift_texts=cfg.capture_drift_texts)


class Agent:
    def __init__(self, classifier: SentimentClassifier, config: AgentConfig) -> None:
        self.clf, self.cfg = classifier, config
        self.started = time.time()
        self.last_update: tuple[str | None, str | None] = (None, None)  # event, reason
        topics = Topics(config.prefix)
        self.topics: dict[str, str] = {
            **{kind: topics.device(config.device_id, kind) for kind in DeviceTopic},
            "manifest": topics.manifest(config.channel), "trust": topics.trust(),
            "rollout": topics.rollout(config.channel)}
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.slots = SlotStore(config.state_dir)
        self.outbox = Outbox(config.state_dir / "outbox.sqlite", config.queue_max_messages)
        self.events: queue.Queue[tuple[str, str, bytes]] = queue.Queue()
        # the last will is written before the updater exists: it carries no fault counts
        will = (self.topics[DeviceTopic.STATUS],
                json.dumps(self._status_body("offline", 0, 0, faults=False)).encode())
        self.link = Link(config, self.outbox, will, on_connect=self._on_connect,
                         on_message=lambda t, p: self.events.put(("msg", t, p)))
        self.updater = Updater(config, self.slots, self._report, self.link.subscribe,
                               self.link.unsubscribe, self.clf.swap, classifier.info.profile)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loop_errors: dict[str, int] = {}  # per loop step: errors logged and survived
        self.notifier = Notifier()
        self.trials = TrialKeeper(config.state_dir, rules_of(config))
        self.capture: Capture | None = None
        if config.capture:
            self.capture = Capture(SampleStore(config.state_dir / "samples.sqlite",
                                               capture_limits(config)))
            classifier.capture = self.capture

    # -- messages ------------------------------------------------------------
    def _status_body(self, state: str, seq: int, evicted: int, faults: bool = True
                     ) -> dict[str, Any]:
        info = self.clf.info
        return {"schema": SCHEMAS[DeviceTopic.STATUS], "device": self.cfg.device_id, "seq": seq,
                "evicted": evicted, "state": state, "ts": time.time(),
                "model_version": info.bundle["version"], "model_name": info.bundle["name"],
                "profile": info.profile, "backend": info.backend, "provider": info.provider,
                "agent_version": __version__, "channel": self.cfg.channel,
                "last_update": self.last_update[0], "last_reason": self.last_update[1],
                **({"faults": self.faults()} if faults else {})}

    def faults(self) -> dict[str, Any]:
        """What the agent survived: loop errors per step, messages lost to a full disk, stray
        or forged chunk messages ignored, and a corrupt outbox moved aside at start."""
        out: dict[str, Any] = {"loop_errors": dict(self.loop_errors), "lost": self.outbox.lost,
                               "ignored_chunks": self.updater.ignored_chunks}
        if self.outbox.reset_reason:
            out["outbox_reset"] = self.outbox.reset_reason
        return out

    def _enqueue(self, kind: DeviceTopic, body: dict[str, Any], retain: bool = False) -> int:
        def build(seq: int, evicted: int) -> dict[str, Any]:
            return {**body, "device": self.cfg.device_id, "seq": seq, "evicted": evicted}
        seq = self.outbox.put(self.topics[kind], build, retain=retain)
        self.link.pump()
        return seq

    def _status(self, state: str) -> None:
        self.outbox.put(self.topics[DeviceTopic.STATUS],
                        lambda s, e: self._status_body(state, s, e), retain=True)
        self.link.pump()

    def _report(self, event: str, detail: dict[str, Any]) -> None:
        log.info("update %s: %s", event, detail)
        self._enqueue(DeviceTopic.UPDATE, {
            "schema": SCHEMAS[DeviceTopic.UPDATE], "event": event, "ts": time.time(),
            "model_version": self.clf.info.bundle["version"], **detail})
        self.last_update = (event, str(detail["reason"]) if "reason" in detail else None)
        if event == "active":
            self.trials.begin(str(detail["version"]))
        if event in ("active", "rolled_back", "rejected"):
            self._status("online")  # retained: fleet status shows the last event and reason

    def metrics_body(self) -> dict[str, Any]:
        snap = self.clf.metrics.snapshot(reset=True)
        return {"schema": SCHEMAS[DeviceTopic.METRICS], **snap,
                "model_version": self.clf.info.bundle["version"], "backend": self.clf.info.backend,
                "uptime_s": round(time.time() - self.started, 1), "rss_mb": _rss_now_mb(),
                "cpu_temp_c": cpu_temperature(), "outcomes": self.clf.outcome_stats()}

    def feedback(self, id: str, label: str) -> Outcome:
        """An embedding app's ground truth: ``SentimentClassifier.feedback`` on the agent's
        classifier, so it shows in the next metrics message and can raise an alert."""
        return self.clf.feedback(id, label)

    def publish_metrics(self) -> None:
        body = self.metrics_body()
        self._enqueue(DeviceTopic.METRICS, body, retain=True)  # retained: `fleet status` reads the latest
        alerts = self._alerts(body)
        self._judge(self.trials.verdict(body))
        if self.capture is not None:
            self.capture.window_closed(bool({"class_psi", "confidence_psi"} & set(alerts)))
            if self.cfg.upload_samples:
                self._upload_samples()

    def _upload_samples(self) -> None:
        """Each captured sample once, through the outbox, on ``<prefix>/samples/<device>``."""
        assert self.capture is not None
        rows = self.capture.store.rows(only_new=True)
        topic = Topics(self.cfg.prefix).samples(self.cfg.device_id)
        for row in rows:
            sample = {"schema": SAMPLE_SCHEMA, **{k: v for k, v in row.items() if k != "id"}}
            self.outbox.put(topic, functools.partial(self._sample_body, sample))
        self.capture.store.mark_uploaded([row["id"] for row in rows])
        self.link.pump()

    def _judge(self, verdict: Verdict | None) -> None:
        """A trial's final verdict: mark the slot good, or step back and say why."""
        trial = self.trials.trial
        if verdict is None or trial is None:
            return
        self.trials.end()
        if trial.version != self.slots.current_version():  # stepped back before the load
            self._report("rolled_back", {"version": trial.version, "reason": UpdateReason.UNHEALTHY,
                                         "detail": verdict.reason, "health": verdict.figures,
                                         "current": self.slots.current_version()})
        elif verdict.state == "healthy":
            self.slots.mark_good(trial.version)
            self._report("healthy", {"version": trial.version, "detail": verdict.reason,
                                     "health": verdict.figures})
        else:
            self.updater.roll_back_unhealthy(verdict.reason, verdict.figures)

    def _sample_body(self, sample: dict[str, Any], seq: int, evicted: int) -> dict[str, Any]:
        return {**sample, "device": self.cfg.device_id, "seq": seq, "evicted": evicted}

    def _alerts(self, body: dict[str, Any]) -> list[str]:
        drift = body.get("drift") or {}
        checks = [("class_psi", drift.get("class_psi"), self.cfg.alert_psi),
                  ("confidence_psi", drift.get("confidence_psi"), self.cfg.alert_psi),
                  ("low_confidence_share", body["confidence"]["low_share"],
                   self.cfg.alert_low_confidence_share)]
        raised = []
        for name, value, limit in checks:
            if value is not None and body["count"] >= 20 and value > limit:
                raised.append(self._alert(name, value, limit, body["model_version"]))
        outcomes = body["outcomes"]
        if outcomes["count"] >= self.cfg.alert_min_outcomes:
            for name, limit in (("accuracy", self.cfg.alert_min_accuracy),
                                ("macro_f1", self.cfg.alert_min_macro_f1)):
                if outcomes[name] is not None and outcomes[name] < limit:
                    raised.append(self._alert(f"online_{name}", outcomes[name], limit,
                                              body["model_version"]))
        return raised

    def _alert(self, name: str, value: float, limit: float, version: str) -> str:
        self._enqueue(DeviceTopic.ALERTS, {
            "schema": SCHEMAS[DeviceTopic.ALERTS], "alert": name, "value": value,
            "threshold": limit, "ts": time.time(), "model_version": version})
        return name

    # -- lifecycle -----------------------------------------------------------
    def _on_connect(self) -> None:
        for kind in ("manifest", "trust", "rollout"):
            self.link.subscribe(self.topics[kind])
        self.events.put(("connected", "", b""))

    def start(self) -> None:
        self.updater.resume()  # never raises: a failed resume is reported and abandoned
        self.trials.started()
        self._step("trial", lambda: self._judge(self.trials.verdict()))
        self._step("status", lambda: self._status("online"))
        self.link.start()
        self._thread = threading.Thread(target=self._loop, name="edge-agent", daemon=True)
        self._thread.start()
        self.notifier.ready()

    def _step(self, name: str, fn: Callable[[], object]) -> None:
        """One guarded step of the work loop: an error is logged, counted (``faults()``) and
        survived, so a full disk or a bad message never ends the loop."""
        try:
            fn()
        except Exception:
            self.loop_errors[name] = self.loop_errors.get(name, 0) + 1
            log.exception("agent step %s failed (%d so far)", name, self.loop_errors[name])

    def _loop(self) -> None:
        next_metrics = time.time() + self.cfg.metrics_interval_s
        while not self._stop.is_set():
            timeout = max(0.0, next_metrics - time.time())
            try:
                kind, topic, payload = self.events.get(timeout=min(timeout, 1.0))
            except queue.Empty:
                pass
            else:
                self._step("event", functools.partial(self._handle, kind, topic, payload))
            if time.time() >= next_metrics:
                next_metrics = max(next_metrics + self.cfg.metrics_interval_s, time.time())
                self._step("metrics", self.publish_metrics)
            self._step("pump", self.link.pump)
            self.notifier.ping()

    def _handle(self, kind: str, topic: str, payload: bytes) -> None:
        if kind == "connected":
            self._status("online")
            if self.updater.release is not None:
                self.updater.resume_subscription()
        elif topic == self.topics["manifest"]:
            self.updater.on_manifest(payload)
        elif topic == self.topics["trust"]:
            self.updater.on_trust(payload)
        elif topic == self.topics["rollout"]:
            self.updater.on_directive(payload)
        else:
            self.updater.on_chunk(topic, payload)

    def stop(self, timeout: float = 5.0) -> None:
        """Publish a retained ``stopped`` status, flush what can be sent and disconnect, all
        within about ``timeout`` seconds; what is left stays in the outbox for the next start."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._thread:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self._status("stopped")
        while len(self.outbox) and self.link.connected.is_set() and time.monotonic() < deadline:
            self.link.pump()
            time.sleep(0.05)
        self.link.stop(max(0.5, deadline - time.monotonic()))
        self.outbox.close()
        if self.capture is not None:
            self.capture.store.close()
