"""The selector is pure: facts, runtimes and providers are plain values here."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from edge_sentiment.bundle import open_bundle
from edge_sentiment.errors import BundleError, RuntimeUnavailableError
from edge_sentiment.hardware import Request, detect, load_profiles, match_profile, select_plan

SYSROOTS = Path(__file__).parents[2] / "fixtures" / "sysroots"
ARTIFACTS = open_bundle(Path(__file__).parents[2] / "fixtures" / "tiny_bundle").manifest.artifacts
BOTH = {"onnx": "1.32.0", "tflite": "ai_edge_litert 2.3.0"}
CPU = {"onnx": ["CPUExecutionProvider"], "tflite": ["xnnpack", "cpu"]}


def _plan(board: str, runtimes=BOTH, providers=CPU, request=Request()):  # type: ignore[no-untyped-def]
    facts = detect(SYSROOTS / board)
    profile = match_profile(facts, load_profiles())
    return profile, select_plan(facts, runtimes, providers, profile, request, ARTIFACTS)


def test_pi4_prefers_onnx_int8_with_four_threads() -> None:
    profile, plan = _plan("raspberry-pi-4")
    first = plan.candidates[0]
    assert (profile.name, first.backend, first.artifact.precision, first.threads) == \
        ("raspberry-pi-4", "onnx", "int8", 4)
    assert "preferred by profile raspberry-pi-4" in first.reason


def test_pi3_prefers_tflite() -> None:
    facts = detect(SYSROOTS / "raspberry-pi-4")
    prof = match_profile(facts, load_profiles(), "raspberry-pi-3")
    plan = select_plan(facts, BOTH, CPU, prof, Request(), ARTIFACTS)
    assert [c.backend for c in plan.candidates][:2] == ["tflite", "tflite"]
    assert plan.candidates[0].provider == "xnnpack"


def test_plan_names_a_tflite_artifact_s_lengths() -> None:
    facts = detect(SYSROOTS / "raspberry-pi-4")
    prof = match_profile(facts, load_profiles(), "raspberry-pi-3")
    arts = tuple(replace(a, input_shape=(1, 64), lengths=(16, 32, 64))
                 if a.runtime == "tflite" else a for a in ARTIFACTS)
    first = select_plan(facts, BOTH, CPU, prof, Request(), arts).candidates[0]
    assert "(lengths 16/32/64)" in first.reason and first.to_json()["lengths"] == [16, 32, 64]
    plain = select_plan(facts, BOTH, CPU, prof, Request(), ARTIFACTS).candidates[0]
    assert "lengths" not in plain.reason and "lengths" not in plain.to_json()


def test_jetson_orin_with_gpu_build_uses_tensorrt_first() -> None:
    gpu = {"onnx": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
           "tflite": ["xnnpack", "cpu"]}
    profile, plan = _plan("jetson-orin", providers=gpu)
    assert profile.name == "jetson-orin"
    assert [c.provider for c in plan.candidates][:2] == ["TensorrtExecutionProvider"] * 2
    assert plan.candidates[0].threads == 6


def test_jetson_nano_cpu_only_build_records_why() -> None:
    _, plan = _plan("jetson-nano")
    assert plan.candidates[0].provider == "CPUExecutionProvider"
    rejected = {r.provider: r.reason for r in plan.rejected}
    assert "not available" in rejected["CUDAExecutionProvider"]
    assert "not available" in rejected["TensorrtExecutionProvider"]


def test_missing_runtime_is_reported_with_extra() -> None:
    _, plan = _plan("raspberry-pi-5", runtimes={"onnx": "1.32"}, providers={"onnx": CPU["onnx"]})
    assert {c.backend for c in plan.candidates} == {"onnx"}
    assert any("edge-sentiment[tflite]" in r.reason for r in plan.rejected)


def test_explicit_request_cannot_be_met_lists_available() -> None:
    with pytest.raises(RuntimeUnavailableError, match=r"runtime=tflite.*can run \[onnx"):
        _plan("x86-server", runtimes={"onnx": "1.32"}, providers={"onnx": CPU["onnx"]},
              request=Request(runtime="tflite"))
    with pytest.raises(RuntimeUnavailableError, match="unknown runtime"):
        _plan("x86-server", request=Request(runtime="coreml"))


def test_auto_with_nothing_runnable_is_a_bundle_error() -> None:
    with pytest.raises(BundleError, match="no artifact in this bundle can run here"):
        _plan("x86-server", runtimes={}, providers={})


def test_threads_request_and_core_cap() -> None:
    _, plan = _plan("x86-server", request=Request(threads=3))
    assert plan.candidates[0].threads == 3
    _, plan = _plan("jetson-nano")
    assert plan.candidates[0].threads == 4
