"""Shared fixtures: the committed tiny bundle (real ONNX and TFLite files) and copies of it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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
