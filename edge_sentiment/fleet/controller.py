"""``fleet controller``: runs staged rollouts (``rollout_plan.py``) against the devices' reports.

State lives in SQLite (``--db``), so a controller killed mid-rollout resumes where it was: the
plans and their progress, every device's last update event per version, the devices seen and
a log of decisions. ``fleet rollout start|pause|resume|abort`` write requests into the same
file; the controller applies them on its next tick. Each decision signs a directive with the
rollout key (its sequence above the last one on the channel, the retained one included) and
publishes it retained; on abort the directive revokes the version, and devices running it step
back to their previous slot. Decisions are logged as records with ``event: rollout_<kind>`` and
counted for Prometheus (``collect``).
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..protocol import DeviceTopic, Topics, connect, device_of
from ..protocol.rollout import Directive, RolloutState, make_directive
from ..protocol.signing import read_key, sign_document
from .rollout_plan import Decision, Plan, Progress, decide

log = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rollouts (channel TEXT PRIMARY KEY, plan TEXT NOT NULL, "
    "progress TEXT NOT NULL, request TEXT)",
    "CREATE TABLE IF NOT EXISTS outcomes (version TEXT, device TEXT, event TEXT, reason TEXT, "
    "ts REAL, PRIMARY KEY (version, device))",
    "CREATE TABLE IF NOT EXISTS devices (device TEXT PRIMARY KEY, seen REAL)",
    "CREATE TABLE IF NOT EXISTS decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL, "
    "channel TEXT, version TEXT, kind TEXT, reason TEXT)",
)


class ControllerDB:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
        self.lock = threading.Lock()
        for sql in _SCHEMA:
            self.db.execute(sql)
        self.db.commit()

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self.lock:
            rows = self.db.execute(sql, args).fetchall()
            self.db.commit()
        return rows

    def start(self, plan: Plan, sequence: int = 0) -> None:
        row = self._exec("SELECT progress FROM rollouts WHERE channel = ?", (plan.channel,))
        if row:
            old = Progress.from_json(json.loads(row[0][0]))
            if old.state in ("active", "paused"):
                raise ConfigError(f"channel {plan.channel} already has a rollout {old.state}: "
                                  "abort it first")
            sequence = max(sequence, old.sequence)
        progress = Progress(phase=0, state="active", phase_started=0.0, sequence=sequence)
        self._exec("INSERT OR REPLACE INTO rollouts VALUES (?, ?, ?, ?)",
                   (plan.channel, json.dumps(plan.to_json()), json.dumps(progress.to_json()),
                    "start"))

    def request(self, channel: str, what: str) -> None:
        if not self._exec("SELECT 1 FROM rollouts WHERE channel = ?", (channel,)):
            raise ConfigError(f"no rollout on channel {channel}")
        self._exec("UPDATE rollouts SET request = ? WHERE channel = ?", (what, channel))

    def rollouts(self) -> list[tuple[Plan, Progress, str | None]]:
        return [(Plan.from_json(json.loads(p)), Progress.from_json(json.loads(g)), r)
                for p, g, r in self._exec("SELECT plan, progress, request FROM rollouts")]

    def save(self, plan: Plan, progress: Progress, request: str | None = None) -> None:
        self._exec("UPDATE rollouts SET progress = ?, request = ? WHERE channel = ?",
                   (json.dumps(progress.to_json()), request, plan.channel))

    def record(self, devices: list[str], outcomes: list[tuple[str, str, str, str]]) -> None:
        """A tick's worth of reports in one transaction (one commit, not one per message)."""
        now = time.time()
        with self.lock:
            self.db.executemany("INSERT OR REPLACE INTO devices VALUES (?, ?)",
                                [(d, now) for d in dict.fromkeys(devices)])
            self.db.executemany("INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?)",
                                [(*o, now) for o in outcomes])
            self.db.commit()

    def outcomes(self, version: str) -> dict[str, tuple[str, str]]:
        rows = self._exec("SELECT device, event, reason FROM outcomes WHERE version = ?",
                          (version,))
        return {d: (e, r) for d, e, r in rows}

    def devices(self) -> set[str]:
        return {r[0] for r in self._exec("SELECT device FROM devices")}

    def decision(self, plan: Plan, kind: str, reason: str) -> None:
        self._exec("INSERT INTO decisions (ts, channel, version, kind, reason) VALUES "
                   "(?, ?, ?, ?, ?)", (time.time(), plan.channel, plan.version, kind, reason))

    def decisions(self) -> list[dict[str, Any]]:
        keys = ("ts", "channel", "version", "kind", "reason")
        return [dict(zip(keys, r)) for r in
                self._exec("SELECT ts, channel, version, kind, reason FROM decisions ORDER BY id")]


class Controller:
    def __init__(self, broker: Any, prefix: str, db: ControllerDB, key: Path,
                 expires_hours: float = 24.0) -> None:
        self.broker, self.topics, self.db = broker, Topics(prefix), db
        self.key = read_key(key)
        self.expires = timedelta(hours=expires_hours)
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.retained_sequence: dict[str, int] = {}
        self.client: Any = None

    def start(self) -> None:
        self.client = connect(self.broker)
        self.client.on_message = lambda c, u, msg: self.inbox.put((msg.topic, msg.payload))
        kinds = (DeviceTopic.UPDATE, DeviceTopic.STATUS)
        self.client.subscribe([(self.topics.all_devices(kind), 1) for kind in kinds]
                              + [(self.topics.rollout("+"), 1)])

    def stop(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    def _take(self, topic: str, payload: bytes, devices: list[str],
              outcomes: list[tuple[str, str, str, str]]) -> None:
        where = device_of(topic)
        try:
            body = json.loads(payload)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        if where is None:  # a channel's retained directive: its sequence is the floor
            try:
                d = Directive.from_signed(body["signed"])
            except Exception:  # anyone's garbage on a rollout topic must not stop the ticks
                return
            self.retained_sequence[d.channel] = max(self.retained_sequence.get(d.channel, 0),
                                                    d.sequence)
            return
        device, kind = where
        devices.append(device)
        event, version = body.get("event"), body.get("version")
        if kind == "update" and isinstance(event, str) and isinstance(version, str):
            outcomes.append((version[:64], device, event[:32], str(body.get("reason") or "")[:64]))

    def tick(self, now: float | None = None) -> None:
        heard: list[str] = []
        outcomes: list[tuple[str, str, str, str]] = []
        while True:
            try:
                self._take(*self.inbox.get_nowait(), heard, outcomes)
            except queue.Empty:
                break
        if heard:
            self.db.record(heard, outcomes)
        now = time.time() if now is None else now
        devices = self.db.devices()
        for plan, progress, request in self.db.rollouts():
            if request:
                self._apply_request(plan, progress, request, now)
                continue
            decision = decide(plan, progress, devices, self.db.outcomes(plan.version), now)
            if decision is not None:
                self._apply(plan, progress, decision, now)
            elif progress.state in ("active", "paused") \
                    and now - progress.published_at > self.expires.total_seconds() / 2:
                state = RolloutState(progress.state)  # the same directive, before it expires
                self._publish(plan, progress, state, now=now)
                self.db.save(plan, progress)

    def _apply_request(self, plan: Plan, progress: Progress, request: str, now: float) -> None:
        if request == "start":
            progress.phase_started = now
            self._publish(plan, progress, RolloutState.ACTIVE)
            self._record(plan, progress, "start", f"phase 0 at {plan.phases[0]:.0%}", now)
        elif request == "pause" and progress.state == "active":
            progress.state = "paused"
            self._publish(plan, progress, RolloutState.PAUSED)
            self._record(plan, progress, "pause", "by request", now)
        elif request == "resume" and progress.state == "paused":
            progress.state, progress.phase_started = "active", now
            self._publish(plan, progress, RolloutState.ACTIVE)
            self._record(plan, progress, "resume", "by request", now)
        elif request == "abort" and progress.state in ("active", "paused"):
            self._apply(plan, progress, Decision("abort", "by request", progress.phase), now)
            return
        self.db.save(plan, progress)

    def _apply(self, plan: Plan, progress: Progress, d: Decision, now: float) -> None:
        if d.kind == "abort":
            progress.state, progress.reason = "aborted", d.reason
            self._publish(plan, progress, RolloutState.ABORTED, revoked=(plan.version,))
        elif d.kind == "done":
            progress.state, progress.reason = "done", d.reason
        else:
            progress.phase, progress.phase_started = d.phase, now
            self._publish(plan, progress, RolloutState.ACTIVE)
        self._record(plan, progress, d.kind, d.reason, now)
        self.db.save(plan, progress)

    def _record(self, plan: Plan, progress: Progress, kind: str, reason: str, now: float) -> None:
        progress.history.append({"ts": now, "kind": kind, "phase": progress.phase,
                                 "reason": reason})
        self.db.decision(plan, kind, reason)
        log.info("rollout %s %s on %s: %s (phase %d, %.0f%%)", plan.version, kind, plan.channel,
                 reason, progress.phase, 100 * plan.phases[progress.phase],
                 extra={"event": f"rollout_{kind}"})

    def _publish(self, plan: Plan, progress: Progress, state: RolloutState,
                 revoked: tuple[str, ...] = (), now: float | None = None) -> None:
        progress.sequence = max(progress.sequence, self.retained_sequence.get(plan.channel, 0)) + 1
        directive = make_directive(
            channel=plan.channel, sequence=progress.sequence, version=plan.version,
            bundle_sha256=plan.bundle_sha256, share=plan.phases[progress.phase], salt=plan.salt,
            state=state, revoked=revoked, expires=datetime.now(UTC) + self.expires)
        doc = sign_document(directive.to_signed(), [self.key])
        self.client.publish(self.topics.rollout(plan.channel), json.dumps(doc).encode(), qos=1,
                            retain=True).wait_for_publish(10)
        self.retained_sequence[plan.channel] = progress.sequence
        progress.published_at = time.time() if now is None else now
