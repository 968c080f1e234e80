"""Secrets stay private: keys keep their modes under any umask, credentials never ride in a
broker URL (where logs would show them)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edge_sentiment.agent.config import load_config
from edge_sentiment.cli import main
from edge_sentiment.errors import ConfigError
from edge_sentiment.fleet.ops import keygen


def test_keygen_modes_ignore_a_loose_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        key, pub = keygen(tmp_path / "keys", "k")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub.stat().st_mode) == 0o644


def test_credentials_in_a_broker_url_are_refused(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, {"broker": "mqtt://alice:hunter2@host:1883", "device_id": "d",
                           "state_dir": tmp_path})
    assert "credentials in the broker URL are refused" in str(err.value)
    assert "hunter2" not in str(err.value)
    assert main(["fleet", "status", "--broker", "mqtt://alice:hunter2@127.0.0.1:1"]) == 2
    out = capsys.readouterr()
    assert "credentials in the broker URL are refused" in out.err and "hunter2" not in out.err
