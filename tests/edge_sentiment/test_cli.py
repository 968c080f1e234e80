"""The CLI through ``main(argv)`` in-process and, for stdin and exit codes, as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sentiment.cli import main

FIX = Path(__file__).parents[1] / "fixtures"
TINY = str(FIX / "tiny_bundle")


def _json_lines(out: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_classify_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", "--json", "--bundle", TINY, "great", "awful"]) == 0
    rows = _json_lines(capsys.readouterr().out)
    assert [r["text"] for r in rows] == ["great", "awful"]
    assert set(rows[0]) == {"text", "label", "score", "scores"}


def test_runtimes_agree_on_golden(capsys: pytest.CaptureFixture[str]) -> None:
    golden = json.loads((FIX / "tiny_bundle/manifest.json").read_text())["golden"]
    texts = [g["text"] for g in golden]
    labels = {}
    for rt in ("onnx", "tflite"):
        assert main(["classify", "--json", "--runtime", rt, "--bundle", TINY, *texts]) == 0
        labels[rt] = [r["label"] for r in _json_lines(capsys.readouterr().out)]
    assert labels["onnx"] == labels["tflite"] == [g["label"] for g in golden]


def test_classify_stdin_and_bad_bytes() -> None:
    cmd = [sys.executable, "-m", "edge_sentiment", "classify", "--json", "--bundle", TINY]
    ok = subprocess.run(cmd, input=b"nice one\n\nterrible\n", capture_output=True, check=False)
    assert ok.returncode == 0 and len(_json_lines(ok.stdout.decode())) == 2
    bad = subprocess.run(cmd, input=b"fine\n\xff\xfe\n", capture_output=True, check=False)
    assert bad.returncode == 2
    assert b"stdin line 2: not valid UTF-8" in bad.stderr and b"Traceback" not in bad.stderr
    empty = subprocess.run(cmd, input=b"\n", capture_output=True, check=False)
    assert empty.returncode == 2 and b"no text given" in empty.stderr


def test_eval_binary_and_three_class(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--json", "--bundle", TINY, "--data", str(FIX / "data/sst2/dev.tsv")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["binary"] is True and result["n"] == 40
    assert {"n", "accuracy", "macro_f1", "macro_recall", "per_class", "confusion"} <= set(result)
    assert main(["eval", "--json", "--bundle", TINY, "--data",
                 str(FIX / "data/reviews/test.tsv")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["binary"] is False and len(result["confusion"]["matrix"]) == 3
    assert sum(map(sum, result["confusion"]["matrix"])) == 60


def test_eval_batch_check(capsys: pytest.CaptureFixture[str]) -> None:
    data = str(FIX / "data/reviews/dev.tsv")
    assert main(["eval", "--json", "--batch-check", "--bundle", TINY, "--data", data]) == 0
    result = json.loads(capsys.readouterr().out)
    check = result["batch_consistency"]
    assert check["n"] == result["n"] and check["batch"] == 256
    assert check["changed"] == round(check["n"] * (1 - check["label_agreement"]))
    assert main(["eval", "--batch-check", "--bundle", TINY, "--data", data]) == 0
    assert "alone vs batches of 256: same label" in capsys.readouterr().out
    assert main(["eval", "--json", "--bundle", TINY, "--data", data]) == 0
    assert "batch_consistency" not in json.loads(capsys.readouterr().out)


def test_eval_text_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--bundle", TINY, "--data", str(FIX / "data/reviews/dev.tsv")]) == 0
    out = capsys.readouterr().out
    assert "macro_f1=" in out and "confusion" in out


def test_eval_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nno tab here\n")
    assert main(["eval", "--bundle", TINY, "--data", str(bad)]) == 2
    assert "bad.tsv:2: no tab" in capsys.readouterr().err
    bad.write_text("text\tlabel\nhello\tangry\n")
    assert main(["eval", "--bundle", TINY, "--data", str(bad)]) == 2
    assert "angry" in capsys.readouterr().err
    assert main(["eval", "--bundle", TINY, "--data", str(tmp_path / "missing.tsv")]) == 2


def test_info_here_and_on_pi4(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json", "--bundle", TINY]) == 0
    here = json.loads(capsys.readouterr().out)
    assert (here["profile"], here["backend"], here["provider"]) == \
        ("generic-x86_64", "onnx", "CPUExecutionProvider")
    assert here["plan"]["candidates"] and "hardware" in here and "bundle" in here
    assert main(["info", "--json", "--sysroot", str(FIX / "sysroots/raspberry-pi-4")]) == 0
    pi = json.loads(capsys.readouterr().out)
    assert pi["profile"] == "raspberry-pi-4" and pi["hardware"]["arch"] == "aarch64"


def test_bench_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--json", "--n", "20", "--bundle", TINY]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["latency_ms"]["p50"] > 0 and r["peak_rss_mb"] > 0 and r["throughput_per_s"] > 0
    assert r["texts"] == 8 and r["mean_tokens"] > 5


def test_bench_on_texts_from_a_labelled_file(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    long = " ".join(["the screen is bright and the battery lasts"] * 4)
    data = tmp_path / "dev.tsv"
    data.write_text(f"text\tlabel\n{long}\tpositive\nbad\tnegative\n", encoding="utf-8")
    assert main(["bench", "--json", "--n", "10", "--bundle", TINY, "--texts", str(data)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["texts"] == 2 and r["mean_tokens"] > 15


@pytest.mark.parametrize("argv, code, msg", [
    (["classify", "--bundle", TINY, ""], 2, "empty"),
    (["classify", "--bundle", "/nonexistent", "x"], 3, "bundle not found"),
    (["classify", "--runtime", "coreml", "x"], 2, "invalid choice"),
    (["bench", "--n", "0"], 2, "--n must be"),
    (["bench", "--texts", "/nonexistent.tsv"], 2, "file not found"),
    (["frobnicate"], 2, "invalid choice"),
    ([], 2, "usage"),
])
def test_exit_codes(argv: list[str], code: int, msg: str,
                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_corrupt_bundle_and_unavailable_runtime_codes(bundle_copy,  # type: ignore[no-untyped-def]
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    root = bundle_copy()
    model = root / "model.int8.onnx"
    data = bytearray(model.read_bytes())
    data[100] ^= 0xFF
    model.write_bytes(bytes(data))
    assert main(["classify", "--bundle", str(root), "x"]) == 3
    assert "model.int8.onnx" in capsys.readouterr().err
    only_onnx = bundle_copy(lambda d: d.update(artifacts=d["artifacts"][:2]), name="c")
    assert main(["classify", "--runtime", "tflite", "--bundle", str(only_onnx), "x"]) == 4


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert "default bundle" in capsys.readouterr().out
