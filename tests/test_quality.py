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
            "('torch', 'transformers', 'edge_sentiment_convert', 'litert_torch')]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr


def test_the_device_wheel_carries_only_the_runtime(tmp_path: Path) -> None:
    """``pip install edge-sentiment`` on a device: no build stage, no trial configs, no torch."""
    import shutil
    import zipfile

    src = tmp_path / "src"  # a copy: a stale build/lib in the checkout would end up in the wheel
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns("build", "dist", ".git", "*.egg-info",
                                                             "__pycache__", ".mypy_cache"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                             "--no-build-isolation", "-w", str(tmp_path)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = tmp_path.glob("edge_sentiment-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = next(zf.read(n).decode() for n in names if n.endswith("METADATA"))
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"edge_sentiment", "firmware_profiles"}, tops
    assert not [n for n in names if "convert" in n or (n.endswith(".toml") and "configs" in n)]
    requires = [line for line in meta.splitlines() if line.startswith(("Requires-Dist", "Provides"))]
    assert requires and not [r for r in requires if "torch" in r or "convert" in r], requires


def test_backend_names_live_only_in_their_modules() -> None:
    """A backend's name, extra and default providers are declared once, in its module; the
    selector, profiles, manifest, CLIs and agent config derive them from the registry."""
    import re

    from edge_sentiment.backends import REGISTRY

    pattern = re.compile("|".join(f'["\']{re.escape(n)}["\']' for n in REGISTRY))
    stray = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "edge_sentiment").rglob("*.py")
             if p.parent.name != "backends"
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not stray, f"backend names spelled out outside edge_sentiment/backends/: {stray}"
