"""Lint and type check run as part of the test suite (the README's one test command)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *cmd], cwd=ROOT, capture_output=True, text=True,
                          check=False)


def test_ruff_clean() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_never_imports_torch_or_convert() -> None:
    code = ("import sys, edge_sentiment, edge_sentiment.cli; "
            "from edge_sentiment import SentimentClassifier; "
            "SentimentClassifier.load(runtime='onnx').classify('ok'); "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'transformers', 'convert', 'litert_torch')]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
