"""The agent command's main-thread wait: it ends on the event or at the deadline."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from edge_sentiment.agent.cli import _wait


def test_wait_ends_soon_after_the_event_is_set() -> None:
    done = threading.Event()
    threading.Timer(0.3, done.set).start()
    start = time.monotonic()
    _wait(done, 60.0)
    assert done.is_set() and time.monotonic() - start < 30


def test_wait_ends_at_the_deadline_without_the_event() -> None:
    done = threading.Event()
    start = time.monotonic()
    _wait(done, 0.2)
    assert not done.is_set() and time.monotonic() - start >= 0.2


def test_write_config_escapes_through_a_toml_library(tmp_path: Path) -> None:
    import tomllib

    from edge_sentiment.agent.config import load_config
    from edge_sentiment.cli import main

    out = tmp_path / "agent.toml"
    odd = str(tmp_path / 'state "quoted"\nline\\x')
    assert main(["agent", "--broker", "mqtt://h:1883", "--device-id", "pi-9", "--state-dir", odd,
                 "--write-config", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    assert tomllib.loads(out.read_text())["state_dir"] == odd
    assert str(load_config(out, {}).state_dir) == odd
    assert main(["agent", "--broker", "mqtt://h:1883", "--device-id", "pi-9", "--state-dir", odd,
                 "--write-config", str(out)]) == 2  # never over an existing file
    assert main(["agent", "--broker", "http://h", "--device-id", "pi-9", "--state-dir", odd,
                 "--write-config", str(tmp_path / "b.toml")]) == 2
    assert not (tmp_path / "b.toml").exists()
