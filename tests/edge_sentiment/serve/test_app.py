"""REST API contract: valid and invalid input, auth, limits, readiness, metrics, hot swap."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge_sentiment import SentimentClassifier
from edge_sentiment.serve.app import create_app
from tests.helpers import free_port, wait_http

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


def test_classify_one_and_many(client: TestClient) -> None:
    r = client.post("/v1/classify", json={"text": "works great"})
    assert r.status_code == 200
    p = r.json()["prediction"]
    assert set(p) == {"label", "score", "scores", "id"} and p["label"] in p["scores"]
    r = client.post("/v1/classify", json={"texts": ["good", "bad"]})
    assert r.status_code == 200 and len(r.json()["predictions"]) == 2
    ids = {p["id"] for p in r.json()["predictions"]}
    assert len(ids) == 2 and all(len(i) == 16 for i in ids)


def test_feedback_moves_online_accuracy_in_metrics(client: TestClient) -> None:
    def online() -> dict[str, float]:
        lines = client.get("/metrics").text.splitlines()
        return {line.split('"')[1]: float(line.split()[-1]) for line in lines
                if line.startswith("edge_sentiment_online{")}

    assert online() == {}  # no figure before a label came
    preds = client.post("/v1/classify", json={"texts": ["good", "bad", "fine", "awful"]}
                        ).json()["predictions"]
    for p in preds[:3]:
        r = client.post("/v1/feedback", json={"id": p["id"], "label": p["label"]})
        assert r.status_code == 200 and r.json()["predicted"] == p["label"], r.text
    assert online()["accuracy"] == 1.0
    wrong = next(lab for lab in ("negative", "neutral", "positive") if lab != preds[3]["label"])
    assert client.post("/v1/feedback", json={"id": preds[3]["id"], "label": wrong}).status_code == 200
    assert online()["accuracy"] == 0.75
    assert "edge_sentiment_feedback_total" in client.get("/metrics").text


@pytest.mark.parametrize("body, status, code", [
    ({"id": "0123456789abcdef", "label": "positive"}, 404, "unknown_id"),
    ({"id": "x", "label": "great"}, 422, "bad_label"),
    ({"id": "x"}, 422, "invalid_request"),
    ({"id": 5, "label": "positive"}, 422, "invalid_request"),
])
def test_bad_feedback_gets_a_clear_error(client: TestClient, body: dict, status: int,  # type: ignore[type-arg]
                                         code: str) -> None:
    r = client.post("/v1/feedback", json=body)
    assert r.status_code == status and r.json()["error"]["code"] == code, r.text


def test_feedback_counts_once_per_prediction(client: TestClient) -> None:
    pid = client.post("/v1/classify", json={"text": "good"}).json()["prediction"]["id"]
    assert client.post("/v1/feedback", json={"id": pid, "label": "positive"}).status_code == 200
    again = client.post("/v1/feedback", json={"id": pid, "label": "negative"})
    assert again.status_code == 404 and again.json()["error"]["code"] == "unknown_id"


@pytest.mark.parametrize("body, status, code", [
    ({"text": ""}, 422, "bad_text"),
    ({"text": "   "}, 422, "bad_text"),
    ({}, 422, "bad_request"),
    ({"text": "a", "texts": ["b"]}, 422, "bad_request"),
    ({"texts": []}, 422, "bad_request"),
    ({"texts": ["a"] * 5}, 413, "batch_too_large"),
    ({"text": "x" * 1001}, 413, "text_too_long"),
])
def test_bad_requests_get_clear_json_errors(client: TestClient, body: dict, status: int,  # type: ignore[type-arg]
                                            code: str) -> None:
    r = client.post("/v1/classify", json=body)
    assert r.status_code == status and r.json()["error"]["code"] == code, r.text


def test_schema_violations_are_422(client: TestClient) -> None:
    assert client.post("/v1/classify", json={"text": 5}).status_code == 422
    assert client.post("/v1/classify", json={"text": "a", "extra": 1}).status_code == 422
    assert client.post("/v1/classify", content=b"{not json", headers={"content-type":
                                                                       "application/json"}).status_code == 422


def test_health_ready_info_metrics_page(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    assert client.get("/v1/info").json()["backend"] == "onnx"
    client.post("/v1/classify", json={"text": "great"})
    text = client.get("/metrics").text
    for name in ("edge_sentiment_requests_total", "edge_sentiment_request_seconds_bucket",
                 "edge_sentiment_predictions_total", "edge_sentiment_model_info"):
        assert name in text
    page = client.get("/")
    assert page.status_code == 200 and "/v1/classify" in page.text
    assert "http://" not in page.text and "https://" not in page.text, "no CDN"
    assert client.get("/openapi.json").json()["info"]["title"] == "edge-sentiment"


def test_bearer_token(clf: SentimentClassifier) -> None:
    c = TestClient(create_app(clf, "s3cret"))
    assert c.post("/v1/classify", json={"text": "hi"}).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert c.post("/v1/classify", json={"text": "hi"}, headers=wrong).status_code == 401
    ok = {"Authorization": "Bearer s3cret"}
    assert c.post("/v1/classify", json={"text": "hi"}, headers=ok).status_code == 200
    assert c.get("/metrics").status_code == 401 and c.get("/metrics", headers=ok).status_code == 200
    assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200


def test_hot_swap_without_failed_requests(clf: SentimentClassifier) -> None:
    own = SentimentClassifier.load(TINY, runtime="onnx")
    c = TestClient(create_app(own))
    failures: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            r = c.post("/v1/classify", json={"texts": ["good", "bad"]})
            if r.status_code != 200:
                failures.append(r.status_code)
    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(5):
        own.swap(SentimentClassifier.load(TINY, runtime="tflite"))
        own.swap(SentimentClassifier.load(TINY, runtime="onnx"))
    stop.set()
    for t in threads:
        t.join()
    assert not failures


def test_serve_cli_real_process(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "token").write_text("tok\n")
    proc = subprocess.Popen([sys.executable, "-m", "edge_sentiment", "serve", "--port", str(port),
                             "--bundle", str(TINY), "--token-file", str(tmp_path / "token")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", proc)
        req = urllib.request.Request(base + "/v1/classify", data=b'{"text": "nice"}',
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=5)
        assert exc.value.code == 401
        req.add_header("Authorization", "Bearer tok")
        assert urllib.request.urlopen(req, timeout=5).status == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_empty_token_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n")
    r = subprocess.run([sys.executable, "-m", "edge_sentiment", "serve", "--bundle", str(TINY),
                        "--token-file", str(tmp_path / "token")], capture_output=True, text=True,
                       check=False, cwd=Path(__file__).parents[3])
    assert r.returncode == 2 and "is empty" in r.stderr
