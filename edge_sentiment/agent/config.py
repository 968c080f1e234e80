"""Operator-edited agent config: a TOML file validated by pydantic, unknown keys refused.

Flags given on the command line override the file. The model does no I/O; the
loader reads the TOML and the password file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..backends import RUNTIME_CHOICES
from ..errors import ConfigError
from ..protocol.broker import broker_url_problem
from ..protocol.topics import DEFAULT_PREFIX, TOPIC_PART
from ..tomlfile import read_toml


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    broker: str = Field(description="mqtt://host:port or mqtts://host:port")
    device_id: str
    state_dir: Path
    trust: Path | None = None
    prefix: str = DEFAULT_PREFIX
    channel: str = "stable"
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    metrics_interval_s: float = Field(60.0, gt=0)
    keepalive_s: int = Field(30, ge=5)
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(60.0, gt=0)
    queue_max_messages: int = Field(100_000, ge=10)
    max_bundle_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    max_unpacked_bytes: int = Field(1024 * 1024 * 1024, ge=1024)  # a release's archive, unpacked
    max_archive_members: int = Field(256, ge=2)
    bundle: Path | None = None
    runtime: str = "auto"  # auto or a registered backend (checked below)
    profile: str = "auto"
    alert_psi: float = Field(0.25, gt=0)
    alert_low_confidence_share: float = Field(0.5, gt=0, le=1)
    # online figures from app feedback (outcomes.py): alert below these, once enough outcomes
    alert_min_accuracy: float = Field(0.6, ge=0, le=1)
    alert_min_macro_f1: float = Field(0.5, ge=0, le=1)
    alert_min_outcomes: int = Field(50, ge=1)
    # health after install (agent/health.py): a new model is on trial until a healthy window
    health_min_texts: int = Field(200, ge=1)
    health_min_seconds: float = Field(300.0, ge=0)
    health_timeout_s: float = Field(3600.0, gt=0)  # no traffic: good on its self-test alone
    health_max_error_share: float = Field(0.01, ge=0, le=1)
    health_max_p95_ratio: float = Field(2.0, gt=0)
    health_max_low_confidence_increase: float = Field(0.2, ge=0, le=1)
    health_max_psi: float = Field(0.25, gt=0)  # class mix and confidence, against before
    health_max_starts: int = Field(3, ge=1)  # process starts during a trial: a crash loop
    # opt-in sample capture (edge_sentiment/capture.py, docs/privacy.md): off by default
    capture: bool = False
    upload_samples: bool = False  # send captured samples on <prefix>/samples/<device>
    capture_max_samples: int = Field(1000, ge=1)
    capture_max_bytes: int = Field(1_000_000, ge=1000)
    capture_max_age_s: float = Field(7 * 86400.0, gt=0)
    capture_min_chars: int = Field(20, ge=1)
    capture_low_confidence_rate: float = Field(0.1, ge=0, le=1)
    capture_drift_texts: int = Field(20, ge=0)

    @field_validator("runtime")
    @classmethod
    def _runtime(cls, v: str) -> str:
        if v not in RUNTIME_CHOICES:
            raise ValueError(f"must be one of {', '.join(RUNTIME_CHOICES)}")
        return v

    @field_validator("broker")
    @classmethod
    def _broker(cls, v: str) -> str:
        problem = broker_url_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("device_id", "channel")
    @classmethod
    def _topic_safe(cls, v: str) -> str:
        if not TOPIC_PART.match(v):
            raise ValueError("only letters, digits, '_', '.', '-' (no '/', '+', '#')")
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v or any(not TOPIC_PART.match(p) for p in v.split("/")):
            raise ValueError("topic levels of letters, digits, '_', '.', '-'")
        return v

    @model_validator(mode="after")
    def _pairs(self) -> AgentConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if self.upload_samples and not self.capture:
            raise ValueError("upload_samples needs capture = true")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must be <= reconnect_max_s")
        return self


def _errors(exc: ValidationError, source: str) -> ConfigError:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()]
    return ConfigError(f"{source}: " + "; ".join(parts))


def build_config(values: dict[str, Any], source: str = "config") -> AgentConfig:
    try:
        return AgentConfig(**values)
    except ValidationError as exc:
        raise _errors(exc, source) from exc
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def load_config(path: Path | None, overrides: dict[str, Any]) -> AgentConfig:
    """Read ``path`` (optional), apply non-None ``overrides`` (flags), validate."""
    values = read_toml(path) if path is not None else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return build_config(values, str(path) if path else "flags")


def read_password(cfg: AgentConfig) -> str | None:
    if cfg.password_file is None:
        return cfg.password
    try:
        return cfg.password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"password_file {cfg.password_file}: {exc}") from exc
