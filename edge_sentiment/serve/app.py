"""The local REST API (``pip install 'edge-sentiment[serve]'``).

Endpoints: ``POST /v1/classify``, ``GET /v1/info``, ``GET /healthz``, ``GET /readyz``,
``GET /metrics`` (Prometheus), ``GET /`` (a self-contained try-it page), OpenAPI at ``/docs``.
With a token, every endpoint but ``/healthz`` and ``/readyz`` needs ``Authorization: Bearer``.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict

from ..classifier import SentimentClassifier
from ..errors import EdgeSentimentError, InputError
from .batching import Batcher


@dataclass(frozen=True)
class Limits:
    max_batch: int = 64
    max_chars: int = 20_000
    dynamic_batching: bool = True  # concurrent requests share one model call (batching.py)


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = None
    texts: list[str] | None = None


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("edge_sentiment_requests_total", "HTTP requests",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("edge_sentiment_request_seconds", "classify request latency",
                                 buckets=(.0005, .001, .002, .005, .01, .02, .05, .1, .5),
                                 registry=self.registry)
        self.labels = Counter("edge_sentiment_predictions_total", "predictions by label",
                              ["label"], registry=self.registry)
        self.model = Gauge("edge_sentiment_model_info", "loaded model", ["name", "version", "backend"],
                           registry=self.registry)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def create_app(clf: SentimentClassifier, token: str | None = None,
               limits: Limits = Limits()) -> FastAPI:
    app = FastAPI(title="edge-sentiment", version=clf.info.bundle["version"],
                  description="Offline sentiment classification on this device.")
    m = _Metrics()
    app.state.clf = clf
    batcher = Batcher(lambda: app.state.clf, limits.max_batch)
    app.state.batcher = batcher
    page_html = (resources.files("edge_sentiment.serve") / "index.html").read_text(encoding="utf-8")

    def auth(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        expected = f"Bearer {token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        m.requests.labels(request.url.path, str(exc.status_code)).inc()
        return JSONResponse(status_code=exc.status_code, headers=exc.headers,
                            content={"error": {"code": exc.status_code, "message": exc.detail}})

    # async on purpose: one text costs about 0.5 ms of inference, less than a hop to the thread
    # pool; running it on the event loop nearly doubles requests/s on a 2-core board, and lets
    # requests that arrive together share one model call (batching.py).
    @app.post("/v1/classify", dependencies=[Depends(auth)])
    async def classify(body: ClassifyRequest) -> Any:
        texts = _texts(body, limits)
        if isinstance(texts, JSONResponse):
            m.requests.labels("/v1/classify", str(texts.status_code)).inc()
            return texts
        t0 = time.perf_counter()
        try:
            preds = await batcher.classify(texts) if limits.dynamic_batching \
                else app.state.clf.classify(texts)
        except InputError as exc:
            m.requests.labels("/v1/classify", "422").inc()
            return _error(422, "bad_text", str(exc))
        except EdgeSentimentError as exc:
            m.requests.labels("/v1/classify", "500").inc()
            return _error(500, "model_error", str(exc))
        m.latency.observe(time.perf_counter() - t0)
        m.requests.labels("/v1/classify", "200").inc()
        out = [{"label": p.label, "score": p.score, "scores": p.scores} for p in preds]
        for p in preds:
            m.labels.labels(p.label).inc()
        # a JSONResponse skips FastAPI's jsonable_encoder pass over plain dicts and floats
        return JSONResponse({"prediction": out[0]} if body.text is not None
                            else {"predictions": out})

    @app.get("/v1/info", dependencies=[Depends(auth)])
    def info() -> Any:
        return app.state.clf.info.to_json()

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> Any:
        # a classifier only exists after its bundle loaded and passed the golden self-test
        return {"status": "ready", "model_version": app.state.clf.info.bundle["version"]}

    @app.get("/metrics", dependencies=[Depends(auth)])
    def metrics() -> Response:
        inf = app.state.clf.info
        m.model.clear()
        m.model.labels(inf.bundle["name"], inf.bundle["version"], inf.backend).set(1)
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return page_html

    return app


def _texts(body: ClassifyRequest, limits: Limits) -> list[str] | JSONResponse:
    if (body.text is None) == (body.texts is None):
        return _error(422, "bad_request", 'give exactly one of "text" or "texts"')
    texts = [body.text] if body.text is not None else list(body.texts or [])
    if not texts:
        return _error(422, "bad_request", '"texts" is empty')
    if len(texts) > limits.max_batch:
        return _error(413, "batch_too_large", f"{len(texts)} texts; the limit is {limits.max_batch}")
    longest = max(len(t) for t in texts)
    if longest > limits.max_chars:
        return _error(413, "text_too_long", f"a text has {longest} characters; the limit is "
                      f"{limits.max_chars}")
    return texts
