"""One HTTP error contract: every error of every layer is {"error": {"code", "message"}} with
a string code, auth runs before the body is read, limits hold, and /metrics counts it all."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge_sentiment import SentimentClassifier
from edge_sentiment.serve.app import Limits, create_app

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"
AUTH = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def locked(clf: SentimentClassifier) -> TestClient:
    return TestClient(create_app(clf, "s3cret", Limits(max_batch=4, max_chars=1000)))


def _is_error(r: object, status: int, code: str) -> None:
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code and isinstance(body["error"]["message"], str)


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code"), [
    ("get", "/nope", {}, 404, "not_found"),
    ("get", "/v1/classify", {}, 405, "method_not_allowed"),
    ("post", "/v1/classify", {"content": b"{not json",
                              "headers": {"content-type": "application/json"}}, 422, "bad_json"),
    ("post", "/v1/classify", {"json": {"text": 5}}, 422, "invalid_request"),
    ("post", "/v1/classify", {"json": {"text": "a", "extra": 1}}, 422, "invalid_request"),
    ("post", "/v1/classify", {"content": b'{"text": "a"}'}, 422, "invalid_request"),
    ("post", "/v1/classify", {"content": b"x" * 30000,
                              "headers": {"content-type": "application/json"}},
     413, "body_too_large"),
])
def test_every_error_has_the_one_shape(client: TestClient, method: str, path: str,
                                       kwargs: dict, status: int, code: str) -> None:  # type: ignore[type-arg]
    _is_error(getattr(client, method)(path, **kwargs), status, code)


def test_a_streamed_body_past_the_limit_is_cut_off(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(2000):  # 20 MB if it were read whole; the limit is about 24 kB
            yield b"x" * 10_000
    r = client.post("/v1/classify", content=chunks(),
                         headers={"content-type": "application/json"})
    _is_error(r, 413, "body_too_large")


def test_auth_runs_before_the_body_is_parsed(locked: TestClient) -> None:
    _is_error(locked.post("/v1/classify", content=b"{not json",
                          headers={"content-type": "application/json"}), 401, "unauthorized")
    _is_error(locked.post("/v1/classify", json={"text": "hi"},
                          headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    assert locked.post("/v1/classify", json={"text": "hi"}, headers=AUTH).status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/openapi.json", "/v1/info", "/metrics", "/redoc",
                                  "/nope"])
def test_with_a_token_only_health_and_the_page_shell_are_open(locked: TestClient, path: str) -> None:
    _is_error(locked.get(path), 401, "unauthorized")
    for open_path in ("/healthz", "/readyz", "/"):
        assert locked.get(open_path).status_code == 200
    assert "edge-sentiment-" not in locked.get("/").text  # no model data in the shell


def test_public_docs_flag_opens_only_the_docs(clf: SentimentClassifier) -> None:
    client = TestClient(create_app(clf, "s3cret", Limits(public_docs=True)))
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/v1/info").status_code == 401


def test_docs_page_is_offline_and_schema_documents_errors(client: TestClient) -> None:
    page = client.get("/docs").text
    assert not re.search(r"""(src|href)=["']https?://""", page)
    spec = client.get("/openapi.json").json()
    responses = spec["paths"]["/v1/classify"]["post"]["responses"]
    assert {"401", "404", "413", "422"} <= set(responses)
    assert "ErrorResponse" in spec["components"]["schemas"]


def test_metrics_count_every_error(client: TestClient) -> None:
    client.post("/v1/classify", json={"text": 5})
    client.get("/nope")
    client.get("/v1/classify")
    text = client.get("/metrics").text
    assert 'edge_sentiment_requests_total{endpoint="/v1/classify",status="422"} 1.0' in text
    assert 'edge_sentiment_requests_total{endpoint="other",status="404"} 1.0' in text
    assert 'edge_sentiment_requests_total{endpoint="/v1/classify",status="405"} 1.0' in text
