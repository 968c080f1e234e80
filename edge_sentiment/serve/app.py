"""The local REST API (``pip install 'edge-sentiment[serve]'``).

Endpoints: ``POST /v1/classify``, ``POST /v1/feedback``, ``GET /v1/info``, ``GET /healthz``, ``GET /readyz``,
``GET /metrics`` (Prometheus), ``GET /`` (a self-contained try-it page), ``GET /docs`` (an
offline API page) and ``GET /openapi.json``. With a token, every endpoint but ``/healthz``,
``/readyz`` and the page shell ``/`` needs ``Authorization: Bearer`` (``public_docs`` opens
``/docs`` and ``/openapi.json`` too); auth and the body limit run first (``guard.py``). Every
error of every layer is ``{"error": {"code": "<string>", "message": "..."}}``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
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
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..classifier import SentimentClassifier
from ..errors import EdgeSentimentError, FeedbackError, FeedbackReason, InputError
from .batching import Batcher
from .guard import Guard

PUBLIC = frozenset({"/healthz", "/readyz", "/"})
DOCS = frozenset({"/docs", "/openapi.json"})
KNOWN = PUBLIC | DOCS | {"/v1/classify", "/v1/feedback", "/v1/info", "/metrics"}
_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized",
                 413: "body_too_large", 422: "invalid_request"}


@dataclass(frozen=True)
class Limits:
    max_batch: int = 64
    max_chars: int = 20_000
    dynamic_batching: bool = True  # concurrent requests share one model call (batching.py)
    public_docs: bool = False  # /docs and /openapi.json without the token
    body_timeout: float = 30.0  # seconds to receive a request body

    @property
    def max_body(self) -> int:
        """Bytes of request body: every text at its longest, JSON-escaped, plus framing."""
        return self.max_batch * (self.max_chars * 6 + 16) + 1024


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = None
    texts: list[str] | None = None


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    label: str


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
        self.feedback = Counter("edge_sentiment_feedback_total", "labels received by feedback",
                                ["label"], registry=self.registry)
        self.online = Gauge("edge_sentiment_online", "online accuracy and macro-F1 of the running "
                            "model over its last labelled outcomes", ["figure"],
                            registry=self.registry)
        self.outcomes = Gauge("edge_sentiment_outcomes", "labelled outcomes of the running model "
                              "in the window", registry=self.registry)


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": code}
    for status, code in ((401, "unauthorized"), (405, "method_not_allowed"),
                         (413, "batch_too_large, text_too_long, body_too_large"),
                         (404, "not_found, unknown_id"),
                         (422, "bad_json, invalid_request, bad_request, bad_text, bad_label"),
                         (500, "model_error"))}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def create_app(clf: SentimentClassifier, token: str | None = None,
               limits: Limits = Limits()) -> FastAPI:
    app = FastAPI(title="edge-sentiment", version=clf.info.bundle["version"],
                  description="Offline sentiment classification on this device.",
                  docs_url=None, redoc_url=None, responses=_ERROR_RESPONSES)
    m = _Metrics()

    def public(path: str) -> bool:
        return path in PUBLIC or (limits.public_docs and path in DOCS)

    def count(path: str, status: int) -> None:
        m.requests.labels(path if path in KNOWN else "other", str(status)).inc()

    app.add_middleware(Guard, token=token, max_body=limits.max_body, public=public, count=count,
                       body_timeout=limits.body_timeout)
    app.state.clf = clf
    batcher = Batcher(lambda: app.state.clf, limits.max_batch)
    app.state.batcher = batcher
    files = resources.files("edge_sentiment.serve")
    page_html = (files / "index.html").read_text(encoding="utf-8")
    docs_html = (files / "docs.html").read_text(encoding="utf-8")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            return _error(422, "bad_json", "the body is not valid JSON")
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return _error(422, "invalid_request", f"{where or 'body'}: {first.get('msg', 'invalid')}")

    # async on purpose: one text costs about 0.5 ms of inference, less than a hop to the thread
    # pool; running it on the event loop nearly doubles requests/s on a 2-core board, and lets
    # requests that arrive together share one model call (batching.py).
    @app.post("/v1/classify")
    async def classify(body: ClassifyRequest) -> Any:
        texts = _texts(body, limits)
        if isinstance(texts, JSONResponse):
            return texts
        t0 = time.perf_counter()
        try:
            preds = await batcher.classify(texts) if limits.dynamic_batching \
                else app.state.clf.classify(texts)
        except InputError as exc:
            return _error(422, "bad_text", str(exc))
        except EdgeSentimentError as exc:
            return _error(500, "model_error", str(exc))
        m.latency.observe(time.perf_counter() - t0)
        out = [{"label": p.label, "score": p.score, "scores": p.scores, "id": p.id} for p in preds]
        for p in preds:
            m.labels.labels(p.label).inc()
        # a JSONResponse skips FastAPI's jsonable_encoder pass over plain dicts and floats
        return JSONResponse({"prediction": out[0]} if body.text is not None
                            else {"predictions": out})

    @app.post("/v1/feedback")
    def feedback(body: FeedbackRequest) -> Any:
        try:
            outcome = app.state.clf.feedback(body.id, body.label)
        except FeedbackError as exc:
            status = 404 if exc.reason is FeedbackReason.UNKNOWN_ID else 422
            return _error(status, exc.reason.value, str(exc))
        m.feedback.labels(outcome.label).inc()
        return {"id": body.id, "label": outcome.label, "predicted": outcome.predicted,
                "model_version": outcome.version}

    @app.get("/v1/info")
    def info() -> Any:
        return app.state.clf.info.to_json()

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> Any:
        # a classifier only exists after its bundle loaded and passed the golden self-test
        return {"status": "ready", "model_version": app.state.clf.info.bundle["version"]}

    @app.get("/metrics")
    def metrics() -> Response:
        inf = app.state.clf.info
        m.model.clear()
        m.model.labels(inf.bundle["name"], inf.bundle["version"], inf.backend).set(1)
        stats = app.state.clf.outcome_stats()
        m.outcomes.set(stats["count"])
        m.online.clear()  # no figure until a label has come for the running model
        for figure in ("accuracy", "macro_f1"):
            if stats[figure] is not None:
                m.online.labels(figure).set(stats[figure])
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return page_html

    @app.get("/docs", response_class=HTMLResponse)
    def docs() -> str:
        return docs_html

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
