"""Shared fixtures: the committed tiny bundle (real ONNX and TFLite files), copies of it, and a
real Mosquitto per test (``broker``)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.edge_sentiment.agent.conftest import Broker

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "tiny_bundle"
SYSROOTS = FIXTURES / "sysroots"


@pytest.fixture
def tiny_bundle() -> Path:
    return TINY


@pytest.fixture
def bundle_copy(tmp_path: Path) -> Callable[..., Path]:
    """Copy the tiny bundle; optionally patch its manifest with ``edit(data)``."""
    def make(edit: Callable[[dict[str, Any]], None] | None = None, name: str = "b") -> Path:
        dest = tmp_path / name
        shutil.copytree(TINY, dest)
        if edit is not None:
            path = dest / "manifest.json"
            data = json.loads(path.read_text())
            edit(data)
            path.write_text(json.dumps(data))
        return dest
    return make


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto on a free port with its own config, stopped after the test."""
    from tests.edge_sentiment.agent.conftest import make_broker

    b = make_broker(tmp_path)
    b.start()
    yield b
    b.stop()
