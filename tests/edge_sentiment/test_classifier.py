from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edge_sentiment import Prediction, SentimentClassifier
from edge_sentiment.bundle import open_bundle
from edge_sentiment.errors import BackendError, InputError, RuntimeUnavailableError


@pytest.fixture(scope="module")
def onnx_clf() -> SentimentClassifier:
    return SentimentClassifier.load(Path(__file__).parents[1] / "fixtures/tiny_bundle",
                                    runtime="onnx")


def test_single_and_batch(onnx_clf: SentimentClassifier) -> None:
    one = onnx_clf.classify("works great")
    assert isinstance(one, Prediction)
    assert one.label in onnx_clf.labels and one.score == max(one.scores.values())
    assert abs(sum(one.scores.values()) - 1) < 1e-5
    many = onnx_clf.classify(["works great", "broke in a day", "it is ok"])
    assert many[0].label == one.label
    assert abs(many[0].score - one.score) < 1e-4, "batch padding must not change results"


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_backends_reproduce_golden(tiny_bundle: Path, runtime: str) -> None:
    clf = SentimentClassifier.load(tiny_bundle, runtime=runtime)
    golden = open_bundle(tiny_bundle).manifest.golden
    assert clf.info.backend == runtime
    assert [p.label for p in clf.classify([g.text for g in golden])] == [g.label for g in golden]


def test_info_explains_choice(onnx_clf: SentimentClassifier) -> None:
    info = onnx_clf.info
    assert info.backend == "onnx" and info.provider == "CPUExecutionProvider"
    assert info.profile == "generic-x86_64" and "requested explicitly" in info.reason
    assert any("CUDAExecutionProvider" == r["provider"] for r in info.rejected)


def test_bad_inputs(onnx_clf: SentimentClassifier) -> None:
    for bad in ("", None, 3, b"\xff"):
        with pytest.raises(InputError):
            onnx_clf.classify(bad)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        onnx_clf.classify(["fine", ""])
    assert onnx_clf.classify("x" * 1_000_000).label in onnx_clf.labels


def test_concurrent_callers(tiny_bundle: Path) -> None:
    for runtime in ("onnx", "tflite"):
        clf = SentimentClassifier.load(tiny_bundle, runtime=runtime)
        expected = clf.classify("solid value for money").label
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                for _ in range(30):
                    assert clf.classify("solid value for money").label == expected
            except BaseException as exc:
                errors.append(exc)
        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors


def test_self_test_failure_rejects_candidate(bundle_copy) -> None:  # type: ignore[no-untyped-def]
    def wrong(d: dict) -> None:  # type: ignore[type-arg]
        for g in d["golden"]:
            g["label"] = "negative" if g["label"] != "negative" else "positive"
    with pytest.raises(BackendError, match="golden self-test failed"):
        SentimentClassifier.load(bundle_copy(wrong), runtime="onnx")


def test_explicit_unavailable_runtime_is_an_error(bundle_copy) -> None:  # type: ignore[no-untyped-def]
    root = bundle_copy(lambda d: d.update(artifacts=[a for a in d["artifacts"]
                                                     if a["runtime"] == "onnx"]))
    with pytest.raises(RuntimeUnavailableError, match="runtime=tflite"):
        SentimentClassifier.load(root, runtime="tflite")
    with pytest.raises(RuntimeUnavailableError, match="not available"):
        SentimentClassifier.load(root, runtime="onnx", provider="CUDAExecutionProvider")


def test_env_overrides(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_SENTIMENT_RUNTIME", "tflite")
    monkeypatch.setenv("EDGE_SENTIMENT_PROFILE", "raspberry-pi-3")
    clf = SentimentClassifier.load(tiny_bundle)
    assert (clf.info.backend, clf.info.profile) == ("tflite", "raspberry-pi-3")
    assert SentimentClassifier.load(tiny_bundle, runtime="onnx").info.backend == "onnx"


def test_hot_swap_keeps_serving(tiny_bundle: Path) -> None:
    clf = SentimentClassifier.load(tiny_bundle, runtime="onnx")
    other = SentimentClassifier.load(tiny_bundle, runtime="tflite")
    stop = threading.Event()
    failures: list[BaseException] = []

    def hammer() -> None:
        while not stop.is_set():
            try:
                clf.classify(["great", "awful"])
            except BaseException as exc:
                failures.append(exc)
    t = threading.Thread(target=hammer)
    t.start()
    for _ in range(10):
        clf.swap(other)
        clf.swap(SentimentClassifier.load(tiny_bundle, runtime="onnx"))
    stop.set()
    t.join()
    assert not failures
    assert clf.info.backend == "onnx"


def test_metrics_are_recorded(tiny_bundle: Path) -> None:
    clf = SentimentClassifier.load(tiny_bundle, runtime="onnx")
    clf.classify(["good", "bad", "meh"])
    with pytest.raises(InputError):
        clf.classify("")
    snap = clf.metrics.snapshot()
    assert snap["count"] == 3 and snap["errors"] == 1
    assert sum(snap["labels"].values()) == 3
    assert snap["latency_ms"]["p50"] > 0
    assert snap["drift"]["class_psi"] is not None
    assert clf.metrics.snapshot()["count"] == 0


def test_profile_max_batch_splits_model_calls(tiny_bundle: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    clf = SentimentClassifier.load(tiny_bundle, runtime="onnx", profile="raspberry-pi-3")
    assert clf.info.max_batch == 4 and clf.info.to_json()["max_batch"] == 4
    backend = clf._engine.backend
    sizes: list[int] = []
    real_run = backend.run_side_by_side  # the profile's 4 threads: chunks run side by side

    def counting_run(ids, mask):  # type: ignore[no-untyped-def]
        sizes.append(len(ids))
        return real_run(ids, mask)

    monkeypatch.setattr(backend, "run_side_by_side", counting_run)
    texts = [f"text number {i}" for i in range(10)]
    preds = clf.classify(texts)
    assert sorted(sizes) == [2, 4, 4]
    assert [p.label for p in preds] == [clf.classify(t).label for t in texts]
