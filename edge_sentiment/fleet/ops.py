"""Fleet-side operations: keys, trust files, signing releases, publishing, watching."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .. import __version__
from ..agent.transport import BrokerSettings, make_client
from ..bundle import MANIFEST_FILE, open_bundle, pack_bundle, sha256_file
from ..errors import ConfigError, UpdateError
from ..manifest import parse_semver
from ..release import RELEASE_FORMAT, chunk_hashes, generate_key, make_trust, read_key, sign_document
from ..release import key_id as make_key_id
from .schema import device_of, parse

DEFAULT_CHUNK = 64 * 1024


def keygen(out: Path, name: str) -> tuple[Path, Path]:
    """A key pair: the folder 0700, the private key 0600 and the public key 0644, whatever
    the umask."""
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    priv, pub = generate_key()
    key, pubfile = out / f"{name}.key", out / f"{name}.pub"
    if key.exists():
        raise ConfigError(f"{key} exists; refusing to overwrite a private key")
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(priv).decode() + "\n")
    pubfile.write_text(base64.b64encode(pub).decode() + "\n")
    os.chmod(pubfile, 0o644)
    return key, pubfile


def trust_file(pubs: list[Path], threshold: int, out: Path, version: int = 1,
               signing_keys: list[Path] | None = None) -> dict[str, Any]:
    """A trust document; a rotation is signed by a threshold of the current keys."""
    signed = make_trust([read_key(p) for p in pubs], threshold, version)
    doc = sign_document(signed, [read_key(k) for k in signing_keys or []])
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def sign_release(bundle: Path, keys: list[Path], version: str, channel: str, out: Path, *,
                 expires_days: float = 30, profiles: list[str] | None = None,
                 arches: list[str] | None = None, chunk_size: int = DEFAULT_CHUNK,
                 runtime_max: str | None = None) -> dict[str, Any]:
    """Write ``out/bundle.tar`` (its manifest set to ``version``) and ``out/manifest.json``."""
    parse_semver(version)
    if not keys:
        raise ConfigError("at least one --key is required")
    source = open_bundle(bundle)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "bundle"
        shutil.copytree(source.root, work)
        data = json.loads((work / MANIFEST_FILE).read_text())
        data["version"] = version
        (work / MANIFEST_FILE).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        manifest_sha = sha256_file(work / MANIFEST_FILE)
        tar = pack_bundle(work, out / "bundle.tar")
    major = parse_semver(__version__)[0]
    now = datetime.now(UTC)
    signed = {
        "format": RELEASE_FORMAT, "format_version": 1, "name": source.manifest.name,
        "version": version, "channel": channel, "bundle_sha256": sha256_file(tar),
        "bundle_size": tar.stat().st_size, "chunk_size": chunk_size,
        "chunks": chunk_hashes(tar, chunk_size), "bundle_manifest_sha256": manifest_sha,
        "runtime": {"min": "0.0.0", "max_exclusive": runtime_max or f"{major + 1}.0.0"},
        "targets": {"profiles": profiles or ["*"], "arches": arches or ["*"]},
        "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expires": (now + timedelta(days=expires_days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    doc = sign_document(signed, [read_key(k) for k in keys])
    (out / "manifest.json").write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def _connect(broker: BrokerSettings, timeout: float = 10.0) -> Any:
    client = make_client(broker, f"fleet-{uuid.uuid4().hex[:8]}")
    ready = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: ready.set() if not rc.is_failure else None
    try:
        client.connect(broker.host, broker.port, keepalive=30)
    except OSError as exc:
        raise ConfigError(f"cannot reach broker {broker.url}: {exc}") from exc
    client.loop_start()
    if not ready.wait(timeout):
        client.loop_stop()
        raise ConfigError(f"broker {broker.url} did not accept the connection")
    return client


def publish_release(broker: BrokerSettings, release: Path, prefix: str,
                    timeout: float = 120.0) -> dict[str, Any]:
    """Publish every chunk (retained, QoS 1), then the signed manifest (retained)."""
    try:
        doc = json.loads((release / "manifest.json").read_text())
        signed = doc["signed"]
        data = (release / "bundle.tar").read_bytes()
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{release}: not a release folder (fleet sign writes one): {exc}") from exc
    channel, version, size = signed["channel"], signed["version"], signed["chunk_size"]
    base = f"{prefix}/updates/{channel}/releases/{version}/chunks"
    client = _connect(broker)
    try:
        infos = [client.publish(f"{base}/{i}", data[off:off + size], qos=1, retain=True)
                 for i, off in enumerate(range(0, len(data), size))]
        infos.append(client.publish(f"{prefix}/updates/{channel}/manifest",
                                    json.dumps(doc).encode(), qos=1, retain=True))
        deadline = time.time() + timeout
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.time()))
            if not info.is_published():
                raise UpdateError("publish_timeout", "broker did not acknowledge every chunk")
    finally:
        client.disconnect()
        client.loop_stop()
    return {"channel": channel, "version": version, "chunks": len(infos) - 1, "bytes": len(data)}


def publish_trust(broker: BrokerSettings, trust: Path, prefix: str) -> None:
    client = _connect(broker)
    try:
        client.publish(f"{prefix}/updates/trust", trust.read_bytes(), qos=1,
                       retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def fleet_status(broker: BrokerSettings, prefix: str, wait: float = 2.0) -> list[dict[str, Any]]:
    """One row per device from the retained status and the latest retained metrics."""
    rows: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        where = device_of(msg.topic)
        if where is None:
            return
        device, kind = where
        body = parse(kind, msg.payload)
        with lock:
            row = rows.setdefault(device, {"device": device, "rejected": 0})
            if body is None:  # a malformed message costs only its own device's row
                row["rejected"] += 1
            else:
                row[kind] = body

    client = _connect(broker)
    client.on_message = on_message
    client.subscribe([(f"{prefix}/devices/+/status", 1), (f"{prefix}/devices/+/metrics", 1)])
    time.sleep(wait)
    client.disconnect()
    client.loop_stop()
    return [_row(r) for _, r in sorted(rows.items())]


def _row(raw: dict[str, Any]) -> dict[str, Any]:
    status, metrics = raw.get("status", {}), raw.get("metrics", {})
    return {"device": raw["device"], "online": status.get("state") == "online",
            "state": status.get("state"), "model_version": status.get("model_version"),
            "profile": status.get("profile"), "backend": status.get("backend"),
            "p95_ms": metrics.get("p95"), "drift_class_psi": metrics.get("class_psi"),
            "count": metrics.get("count"), "metrics_seq": metrics.get("seq"),
            "rejected_messages": raw.get("rejected", 0)}


def key_id_of(pub: Path) -> str:
    return make_key_id(read_key(pub))
