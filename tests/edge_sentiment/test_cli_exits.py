"""Honest exits: each bad argument, variable or environment gets its own code and one line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

FIX = Path(__file__).parents[1] / "fixtures"
TINY = str(FIX / "tiny_bundle")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_sentiment", *args], capture_output=True,
                          text=True, check=False, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("args", "env", "needle"), [
    (["classify", "--bundle", TINY, "--threads", "0", "hi"], {}, "--threads: must be >= 1"),
    (["classify", "--bundle", TINY, "hi"], {"EDGE_SENTIMENT_RUNTIME": "bogus"},
     "EDGE_SENTIMENT_RUNTIME='bogus'"),
    (["info", "--bundle", TINY, "--sysroot", "/nonexistent-root"], {}, "no such folder"),
    (["check", "--bundle", TINY, "--seed", "-3"], {}, "--seed must be >= 0"),
])
def test_usage_errors_exit_2_with_one_line(args: list[str], env: dict[str, str],
                                           needle: str) -> None:
    done = _run(*args, env=env)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr


def test_info_honours_the_profile_variable() -> None:
    done = _run("info", "--bundle", TINY, "--json", env={"EDGE_SENTIMENT_PROFILE": "raspberry-pi-4"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["profile"] == "raspberry-pi-4"


def test_a_closed_stdout_ends_quietly() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "edge_sentiment", "info", "--bundle", TINY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(5)
    proc.stdout.close()  # the reader goes away, like `| head -c 5`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_tflite_native_chatter_stays_off_stderr_unless_debug() -> None:
    quiet = _run("classify", "--bundle", TINY, "--runtime", "tflite", "fine")
    assert quiet.returncode == 0 and "XNNPACK" not in quiet.stderr
    loud = _run("--debug", "classify", "--bundle", TINY, "--runtime", "tflite", "fine")
    assert "XNNPACK" in loud.stderr


def test_serve_on_a_busy_port_is_a_usage_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = _run("serve", "--bundle", TINY, "--port", str(port))
    assert done.returncode == 2 and "Address already in use" in done.stderr


ROOT = FIX.parents[1]
CONVERT = ["-m", "edge_sentiment_convert", "build", "--config",
           str(ROOT / "convert" / "configs" / "smoke.toml"), "--data", str(FIX / "data"), "--out"]


@pytest.mark.parametrize(("command", "module", "hint"), [
    (["-m", "edge_sentiment", "serve", "--bundle", TINY], "fastapi",
     "pip install 'edge-sentiment[serve]'"),
    (["-m", "edge_sentiment", "agent", "--broker", "mqtt://127.0.0.1:9", "--device-id", "d",
      "--state-dir", "STATE"], "paho", "pip install 'edge-sentiment[agent]'"),
    (["-m", "edge_sentiment", "fleet", "keygen", "--out", "STATE"], "cryptography",
     "pip install 'edge-sentiment[agent]'"),
    ([*CONVERT, "STATE"], "torch", "pip install -e ./convert"),
])
def test_a_missing_extra_is_exit_4_naming_the_extra(tmp_path: Path, command: list[str],
                                                    module: str, hint: str) -> None:
    # A shadowing package that fails to import stands in for the absent dependency.
    (tmp_path / module).mkdir()
    (tmp_path / module / "__init__.py").write_text(f"raise ImportError(name={module!r})\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    argv = [a.replace("STATE", str(tmp_path / "state")) for a in command]
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=False,
                          env=env, timeout=120)
    assert done.returncode == 4, done.stderr
    assert hint in done.stderr and module in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
