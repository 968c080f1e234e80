"""``--track mlflow``: log a finished build to an MLflow tracking store.

Everything logged is read from the build's out folder and its bundle, after the build: the
config (flattened into parameters), every stage's time and numeric results (``stages/*.json``),
each evaluated artifact's per-split figures (``evaluation.json``), the behavioural failure
rates (``behaviour.json``), the model card, the confusion images and the bundle itself. The
build never waits on the tracker, and a tracker fault cannot spoil a finished bundle.

The default store is ``file:./mlruns``; any tracking URI MLflow takes works (a ``sqlite:///``
store needs the full ``mlflow`` package). MLflow 3 keeps its file store in maintenance mode and
refuses it unless ``MLFLOW_ALLOW_FILE_STORE`` is set; this module sets it (only if unset) when
the URI is a file store, since that is the store asked for.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from edge_sentiment.errors import missing_extra
from edge_sentiment.tomlfile import read_toml

log = logging.getLogger(__name__)
DEFAULT_URI = "file:./mlruns"
TRACKERS = ("mlflow",)
_KEY = re.compile(r"[^0-9a-z/\-]+")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts (and lists of dicts, by index or ``name``) as dotted keys."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}{v.get('name', i)}."))
    else:
        out[prefix.rstrip(".")] = value
    return out


def key(name: str) -> str:
    """An MLflow-safe metric name: each dotted part lower-cased, runs of anything but letters,
    digits, ``/`` and ``-`` made one ``_`` (``speed.teacher int8 (ONNX).p50_ms`` ->
    ``speed.teacher_int8_onnx.p50_ms``)."""
    return ".".join(_KEY.sub("_", part.lower()).strip("_") for part in name.split("."))[:250]


def build_metrics(out: Path, bundle: Path) -> dict[str, float]:
    """Every number the build recorded: stage times and results, evaluation, behaviour."""
    metrics: dict[str, float] = {}
    for marker in sorted((out / "stages").glob("*.json")):
        saved = json.loads(marker.read_text())
        metrics[f"stage.{marker.stem}.seconds"] = float(saved.get("seconds", 0.0))
        if marker.stem in ("evaluate", "behaviour"):  # logged below, from the bundle's files
            continue
        for k, v in flatten(saved.get("result") or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                metrics[f"stage.{marker.stem}.{k}"] = float(v)
    evaluation = bundle / "evaluation.json"
    if evaluation.is_file():
        for artifact, splits in json.loads(evaluation.read_text()).items():
            for split, r in splits.items():
                for figure in ("accuracy", "macro_f1", "ece"):
                    if isinstance(r.get(figure), (int, float)):
                        metrics[f"{artifact}.{split}.{figure}"] = float(r[figure])
                for label, pc in (r.get("per_class") or {}).items():
                    metrics[f"{artifact}.{split}.recall.{label}"] = float(pc["recall"])
    behaviour = bundle / "behaviour.json"
    if behaviour.is_file():
        for artifact, suite in json.loads(behaviour.read_text()).items():
            for t in suite.get("tests", []):
                metrics[f"{artifact}.behaviour.{t['name']}"] = float(t["failure_rate"])
    return {key(k): v for k, v in metrics.items()}


def require(tracker: str) -> None:
    """Fail now, in one line naming the extra, when ``tracker``'s client is not installed."""
    import importlib.util

    if importlib.util.find_spec(tracker) is None:
        raise missing_extra(tracker, "track")


def log_build(config: Path, out: Path, bundle: Path, uri: str = DEFAULT_URI,
              experiment: str | None = None) -> str:
    """Log the finished build under ``out`` (bundle ``bundle``) as one run; its id."""
    try:
        import mlflow
    except ImportError as exc:
        raise missing_extra("mlflow", "track") from exc
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    cfg = read_toml(config)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment or str(cfg.get("name", "edge-sentiment")))
    with mlflow.start_run(run_name=f"{cfg.get('name')} {cfg.get('version')}") as run:
        params = {k[:250]: str(v)[:6000] for k, v in flatten(cfg).items()}
        for start in range(0, len(params), 100):  # MLflow takes at most 100 per call
            mlflow.log_params(dict(list(params.items())[start:start + 100]))
        mlflow.log_metrics(build_metrics(out, bundle))
        mlflow.log_artifact(str(config), "config")
        for png in sorted(bundle.glob("confusion_*.png")):
            mlflow.log_artifact(str(png), "confusion")
        card = bundle / "MODEL_CARD.md"
        if card.is_file():
            mlflow.log_artifact(str(card))
        mlflow.log_artifacts(str(bundle), "bundle")
        run_id: str = run.info.run_id
    log.info("tracked: %s run %s", uri, run_id)
    return run_id
