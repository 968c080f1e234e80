"""Fleet-side operations: keys, trust files, signing releases, publishing, watching."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .. import __version__
from ..bundle import MANIFEST_FILE, open_bundle, pack_bundle, sha256_file
from ..classifier import SentimentClassifier
from ..errors import ConfigError, UpdateError, UpdateReason
from ..manifest import parse_semver, semver_key
from ..protocol import (
    BrokerSettings,
    DeviceTopic,
    Release,
    Topics,
    build_release,
    connect,
    device_of,
    parse_trust,
)
from ..protocol.broker import session
from ..protocol.messages import parse
from ..protocol.rollout import Directive, RolloutState, make_directive
from ..protocol.signing import generate_key, make_trust, read_key, sign_document
from ..protocol.signing import key_id as make_key_id

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
               signing_keys: list[Path] | None = None, rollout_pubs: list[Path] | None = None,
               rollout_threshold: int = 1) -> dict[str, Any]:
    """A trust document; a rotation is signed by a threshold of the current keys. With
    ``rollout_pubs`` it names a rollout role: releases then wait for a rollout directive."""
    signed = make_trust([read_key(p) for p in pubs], threshold, version,
                        [read_key(p) for p in rollout_pubs or []] or None, rollout_threshold)
    parse_trust({"signed": signed}, str(out))  # refuse a threshold the keys cannot meet
    doc = sign_document(signed, [read_key(k) for k in signing_keys or []])
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def sign_release(bundle: Path, keys: list[Path], version: str, channel: str, out: Path, *,
                 expires_days: float = 30, profiles: list[str] | None = None,
                 arches: list[str] | None = None, chunk_size: int = DEFAULT_CHUNK,
                 runtime_max: str | None = None, force: bool = False) -> dict[str, Any]:
    """Write ``out/bundle.tar`` (its manifest set to ``version``) and ``out/manifest.json``.

    What it signs is checked first: the bundle loads and passes its self-test here, the
    version is above the bundle's own and the expiry is ahead (``force`` skips the checks, to
    craft test releases)."""
    parse_semver(version)
    if not keys:
        raise ConfigError("at least one --key is required")
    source = open_bundle(bundle)
    if not force:
        SentimentClassifier.load(source.root)  # BundleError / SelfTestError: not worth signing
    if not force and semver_key(version) <= semver_key(source.manifest.version):
        raise ConfigError(f"--version {version} is not above the bundle's own "
                          f"{source.manifest.version} (--force signs it anyway)")
    if not force and expires_days <= 0:
        raise ConfigError(f"--expires-days {expires_days} must be positive (--force signs it "
                          "anyway)")
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
    release = build_release(name=source.manifest.name, version=version, channel=channel,
                            bundle=tar, chunk_size=chunk_size,
                            bundle_manifest_sha256=manifest_sha,
                            runtime_max=runtime_max or f"{major + 1}.0.0",
                            expires_days=expires_days, profiles=profiles, arches=arches)
    doc = sign_document(release.to_signed(), [read_key(k) for k in keys])
    (out / "manifest.json").write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def publish_release(broker: BrokerSettings, release: Path, prefix: str,
                    timeout: float = 120.0) -> dict[str, Any]:
    """Publish every chunk (retained, QoS 1), then the signed manifest (retained)."""
    try:
        doc = json.loads((release / "manifest.json").read_text())
        rel = Release.from_signed(doc["signed"])
        data = (release / "bundle.tar").read_bytes()
    except (OSError, ValueError, KeyError, TypeError, UpdateError) as exc:
        raise ConfigError(f"{release}: not a release folder (fleet sign writes one): {exc}") from exc
    topics, size = Topics(prefix), rel.chunk_size
    with session(broker) as client:
        infos = [client.publish(topics.chunk(rel.channel, rel.version, i), data[off:off + size],
                                qos=1, retain=True)
                 for i, off in enumerate(range(0, len(data), size))]
        infos.append(client.publish(topics.manifest(rel.channel), json.dumps(doc).encode(),
                                    qos=1, retain=True))
        deadline = time.time() + timeout
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.time()))
            if not info.is_published():
                raise UpdateError(UpdateReason.PUBLISH_TIMEOUT,
                                  "broker did not acknowledge every chunk")
    return {"channel": rel.channel, "version": rel.version, "chunks": len(infos) - 1,
            "bytes": len(data)}


def sign_directive(key: Path, release: Path, out: Path, *, sequence: int, share: float,
                   salt: str | None = None, state: str = "active", revoked: list[str] | None = None,
                   expires_hours: float = 24.0) -> dict[str, Any]:
    """A rollout directive for the signed release in ``release`` (``fleet sign`` wrote it),
    signed by the trust's rollout key."""
    try:
        rel = Release.from_signed(json.loads((release / "manifest.json").read_text())["signed"])
        phase = RolloutState(state)
    except (OSError, ValueError, KeyError, UpdateError) as exc:
        raise ConfigError(f"{release}: not a release folder, or a bad state: {exc}") from exc
    directive = make_directive(
        channel=rel.channel, sequence=sequence, version=rel.version,
        bundle_sha256=rel.bundle_sha256, share=share, salt=salt or rel.version, state=phase,
        revoked=tuple(revoked or ()), expires=datetime.now(UTC) + timedelta(hours=expires_hours))
    doc = sign_document(directive.to_signed(), [read_key(key)])
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def publish_directive(broker: BrokerSettings, path: Path, prefix: str) -> dict[str, Any]:
    """Publish a signed rollout directive, retained, on its channel's rollout topic."""
    try:
        doc = json.loads(path.read_text())
        directive = Directive.from_signed(doc["signed"])
    except (OSError, ValueError, KeyError, TypeError, UpdateError) as exc:
        raise ConfigError(f"{path}: not a rollout directive (fleet rollout-sign writes one): "
                          f"{exc}") from exc
    with session(broker) as client:
        client.publish(Topics(prefix).rollout(directive.channel), json.dumps(doc).encode(),
                       qos=1, retain=True).wait_for_publish(10)
    return {"channel": directive.channel, "sequence": directive.sequence,
            "share": directive.share, "state": directive.state.value}


def unpublish_release(broker: BrokerSettings, release: Path, prefix: str) -> dict[str, Any]:
    """Clear a release's retained chunks, and the channel's retained manifest when it is this
    release's, so new devices stop getting it."""
    try:
        doc = json.loads((release / "manifest.json").read_text())
        rel = Release.from_signed(doc["signed"])
    except (OSError, ValueError, KeyError, TypeError, UpdateError) as exc:
        raise ConfigError(f"{release}: not a release folder (fleet sign writes one): {exc}") from exc
    topics = Topics(prefix)
    retained: list[bytes] = []
    with session(broker) as client:
        client.on_message = lambda c, u, msg: retained.append(msg.payload)
        client.subscribe(topics.manifest(rel.channel), qos=1)
        time.sleep(1.0)  # the retained manifest, if any, arrives at once
        ours = any(_same_release(p, rel) for p in retained)
        infos = [client.publish(topics.chunk(rel.channel, rel.version, i), b"", qos=1, retain=True)
                 for i in range(len(rel.chunks))]
        if ours:
            infos.append(client.publish(topics.manifest(rel.channel), b"", qos=1, retain=True))
        for info in infos:
            info.wait_for_publish(10)
    return {"channel": rel.channel, "version": rel.version, "chunks_cleared": len(rel.chunks),
            "manifest_cleared": ours}


def _same_release(payload: bytes, rel: Release) -> bool:
    try:
        other = Release.from_signed(json.loads(payload)["signed"])
    except (ValueError, KeyError, TypeError, UpdateError):
        return False
    return (other.version, other.bundle_sha256) == (rel.version, rel.bundle_sha256)


def forget_device(broker: BrokerSettings, device: str, prefix: str) -> None:
    """Clear a dead device's retained status and metrics, so it leaves ``fleet status``."""
    topics = Topics(prefix)
    with session(broker) as client:
        for kind in (DeviceTopic.STATUS, DeviceTopic.METRICS):
            client.publish(topics.device(device, kind), b"", qos=1, retain=True).wait_for_publish(10)


def publish_trust(broker: BrokerSettings, trust: Path, prefix: str) -> None:
    with session(broker) as client:
        client.publish(Topics(prefix).trust(), trust.read_bytes(), qos=1,
                       retain=True).wait_for_publish(10)


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

    topics = Topics(prefix)
    client = connect(broker)
    client.on_message = on_message
    client.subscribe([(topics.all_devices(DeviceTopic.STATUS), 1),
                      (topics.all_devices(DeviceTopic.METRICS), 1)])
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
            "last_update": status.get("last_update"), "last_reason": status.get("last_reason"),
            "rejected_messages": raw.get("rejected", 0)}


def key_id_of(pub: Path) -> str:
    return make_key_id(read_key(pub))
