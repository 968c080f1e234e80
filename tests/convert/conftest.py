"""The smoke build (``convert/configs/smoke.toml`` on the committed fixture data), made once per
test session for every module that needs a built bundle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="session")
def smoke_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smoke")
    cmd = [sys.executable, "-m", "edge_sentiment_convert", "build", "--config", "convert/configs/smoke.toml",
           "--data", "tests/fixtures/data", "--out", str(out)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return out
