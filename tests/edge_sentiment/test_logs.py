"""``--log-format json``: every stderr line of serve and the CLI is one JSON object with the
documented fields only, the ready line is an ``event: ready`` record, and neither the texts
classified nor the token appear."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from edge_sentiment.logs import FIELDS
from tests.helpers import free_port, wait_http

TINY = Path(__file__).parents[1] / "fixtures" / "tiny_bundle"
SECRET_TEXT = "zebra-umbrella-4711 was awful"
TOKEN = "tok-5f1e9c-never-logged"


def _records(stderr: str) -> list[dict[str, str]]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    docs = [json.loads(line) for line in lines]  # a text line fails here
    for doc in docs:
        assert set(doc) <= set(FIELDS), doc
        assert {"ts", "level", "logger", "msg"} <= set(doc), doc
    return docs


def _post(port: int, token: str) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/classify",
                                 data=json.dumps({"text": SECRET_TEXT}).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {token}"})
    try:
        return int(urllib.request.urlopen(req, timeout=10).status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_serve_json_logs(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edge_sentiment", "--log-format", "json",
                             "--log-level", "debug", "serve", "--bundle", str(TINY), "--runtime",
                             "onnx", "--port", str(port), "--token-file", str(token_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)  # type: ignore[arg-type]
        assert _post(port, TOKEN) == 200
        assert _post(port, "wrong") == 401
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    docs = _records(err)
    ready = [d for d in docs if d.get("event") == "ready"]
    assert len(ready) == 1, docs
    assert ready[0]["url"] == f"http://127.0.0.1:{port}"
    assert ready[0]["model"] == "edge-sentiment-tiny 0.0.1" and "/" in ready[0]["backend"]
    assert any(d["logger"].startswith("uvicorn") for d in docs), "uvicorn logs bypass JSON"
    assert SECRET_TEXT.split()[0] not in err and TOKEN not in err


def test_cli_error_is_a_json_record(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "edge_sentiment", "--log-format", "json",
                             "classify", "--bundle", str(tmp_path / "none"), SECRET_TEXT],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 3
    docs = _records(result.stderr)
    assert [d["event"] for d in docs if d["level"] == "error"] == ["error"]
    assert SECRET_TEXT.split()[0] not in result.stderr


def test_text_format_stays_plain() -> None:
    result = subprocess.run([sys.executable, "-m", "edge_sentiment", "info", "--sysroot",
                             "/nonexistent-root"], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("edge-sentiment: error: --sysroot")
