"""The agent's side of ``health.py``: the trial's file, the baseline windows, the verdicts."""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..slots import write_json_atomic
from .config import AgentConfig
from .health import BASELINE_WINDOWS, HealthRules, Trial, Verdict, Window, baseline, judge

log = logging.getLogger(__name__)


def rules_of(cfg: AgentConfig) -> HealthRules:
    return HealthRules(min_texts=cfg.health_min_texts, min_seconds=cfg.health_min_seconds,
                       timeout_s=cfg.health_timeout_s, max_error_share=cfg.health_max_error_share,
                       max_p95_ratio=cfg.health_max_p95_ratio,
                       max_low_confidence_increase=cfg.health_max_low_confidence_increase,
                       max_class_psi=cfg.health_max_psi, max_confidence_psi=cfg.health_max_psi,
                       max_starts=cfg.health_max_starts)


class TrialKeeper:
    def __init__(self, state_dir: Path, rules: HealthRules) -> None:
        self.path = state_dir / "trial.json"
        self.rules = rules
        self.recent: deque[dict[str, Any]] = deque(maxlen=BASELINE_WINDOWS)
        self.trial = self._load()

    def _load(self) -> Trial | None:
        try:
            return Trial.from_json(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("trial file %s unreadable (%s): no trial", self.path, exc)
            return None

    def _save(self) -> None:
        if self.trial is not None:
            write_json_atomic(self.path, self.trial.to_json())

    def begin(self, version: str) -> None:
        """A release went active: its trial starts, against the windows before it."""
        before = baseline(list(self.recent)) if self.recent else \
            (self.trial.before if self.trial else Window())
        self.trial = Trial(version, time.time(), before)
        self.recent.clear()
        self._save()

    def started(self) -> None:
        """One more process start during the trial (a crash loop counts up here)."""
        if self.trial is not None:
            self.trial.starts += 1
            self._save()

    def crash_looping(self) -> bool:
        """True when the next start would be over the limit (checked before a model loads)."""
        return self.trial is not None and self.trial.starts >= self.rules.max_starts

    def verdict(self, body: dict[str, Any] | None = None) -> Verdict | None:
        """Add a metrics window (to the trial, else to the baseline); a final verdict or None."""
        if self.trial is None:
            if body is not None:
                self.recent.append(body)
            return None
        if body is not None and self.trial.skip > 0:
            self.trial.skip -= 1  # the window the switch happened in
            self._save()
            return None
        if body is not None:
            self.trial.after.add(body)
            self._save()
        v = judge(self.trial.before, self.trial.after, time.time() - self.trial.started,
                  self.trial.starts, self.rules)
        return None if v.state == "wait" else v

    def end(self) -> None:
        self.trial = None
        self.path.unlink(missing_ok=True)
