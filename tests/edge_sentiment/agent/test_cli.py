"""The agent command's main-thread wait: it ends on the event or at the deadline."""

from __future__ import annotations

import threading
import time

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
