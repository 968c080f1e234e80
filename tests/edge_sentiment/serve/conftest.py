"""The serve tests' shared fixtures: one classifier on the tiny bundle, an app without a token."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge_sentiment import SentimentClassifier
from edge_sentiment.serve.app import Limits, create_app

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


@pytest.fixture(scope="module")
def clf() -> SentimentClassifier:
    return SentimentClassifier.load(TINY, runtime="onnx")


@pytest.fixture
def client(clf: SentimentClassifier) -> TestClient:
    return TestClient(create_app(clf, None, Limits(max_batch=4, max_chars=1000)))
