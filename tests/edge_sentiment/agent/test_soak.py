"""The kill -9 soak across a whole update (download, verify, unpack, activate, trial, mark good),
at a CI-sized number of points; the committed 200-point report is docs/soak_kill_agent.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]


@pytest.mark.slow
def test_kill_9_anywhere_in_an_update_keeps_the_device_whole() -> None:
    out = ROOT / "build" / "soak_kill_agent.json"
    out.parent.mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, str(ROOT / "scripts/soak_kill_agent.py"), "--n", "30",
                           "--recover-every", "10", "--out", str(out)], capture_output=True,
                          text=True, check=False, timeout=900)
    report = json.loads(out.read_text())
    assert done.returncode == 0 and report["ok"], report["broken"] or done.stderr[-2000:]
    assert report["recovered"] == report["recovery_rounds"] == 3
    assert len(report["killed_after"]) >= 3, report["killed_after"]  # kills spread over steps
