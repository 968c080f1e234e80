"""Signed releases and trust files, shared by the agent (verify) and the fleet CLI (sign).

A document is ``{"signed": {...}, "signatures": [{"keyid", "sig"}]}``. Signatures
are Ed25519 over the canonical JSON of ``signed`` (sorted keys, no spaces).
A key id is the first 16 hex digits of the sha256 of the raw public key.
``cryptography`` is imported lazily: it comes with the ``agent`` extra.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import UpdateError, missing_extra
from .manifest import parse_semver, semver_key

DEFAULT_PREFIX = "edge-sentiment"  # the MQTT topic prefix the agent and the fleet commands share
RELEASE_FORMAT = "edge-sentiment-release"
TRUST_FORMAT = "edge-sentiment-trust"
_ISO = "%Y-%m-%dT%H:%M:%SZ"


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:
        raise missing_extra("cryptography", "agent") from exc
    return ed25519


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def generate_key() -> tuple[bytes, bytes]:
    """Return (private raw 32 bytes, public raw 32 bytes)."""
    from cryptography.hazmat.primitives import serialization as s

    private = _ed25519().Ed25519PrivateKey.generate()
    priv = private.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption())
    pub = private.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
    return priv, pub


def read_key(path: Path) -> bytes:
    """A key file holds base64 of the 32 raw bytes."""
    try:
        raw = base64.b64decode(path.read_text().strip(), validate=True)
    except (OSError, ValueError) as exc:
        raise UpdateError("bad_key", f"{path}: cannot read a base64 Ed25519 key: {exc}") from exc
    if len(raw) != 32:
        raise UpdateError("bad_key", f"{path}: expected 32 key bytes, got {len(raw)}")
    return raw


def sign_document(signed: dict[str, Any], private_keys: list[bytes]) -> dict[str, Any]:
    ed = _ed25519()
    sigs = []
    for priv in private_keys:
        key = ed.Ed25519PrivateKey.from_private_bytes(priv)
        from cryptography.hazmat.primitives import serialization as s

        pub = key.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
        sigs.append({"keyid": key_id(pub), "sig": base64.b64encode(key.sign(canonical(signed))).decode()})
    return {"signed": signed, "signatures": sigs}


@dataclass(frozen=True)
class Trust:
    version: int
    threshold: int
    keys: dict[str, bytes]  # keyid -> raw public key


def parse_trust(doc: Any, where: str = "trust") -> Trust:
    try:
        signed = doc["signed"]
        if signed["format"] != TRUST_FORMAT:
            raise ValueError(f"format must be {TRUST_FORMAT}")
        keys = {kid: base64.b64decode(pub, validate=True) for kid, pub in signed["keys"].items()}
        threshold, version = int(signed["threshold"]), int(signed["version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UpdateError("bad_trust", f"{where}: malformed trust document: {exc}") from exc
    for kid, pub in keys.items():
        if len(pub) != 32 or key_id(pub) != kid:
            raise UpdateError("bad_trust", f"{where}: key {kid} does not match its public key")
    if not 1 <= threshold <= len(keys):
        raise UpdateError("bad_trust", f"{where}: threshold {threshold} not in 1..{len(keys)}")
    return Trust(version, threshold, keys)


def make_trust(public_keys: list[bytes], threshold: int, version: int = 1) -> dict[str, Any]:
    return {"format": TRUST_FORMAT, "version": version, "threshold": threshold,
            "keys": {key_id(p): base64.b64encode(p).decode() for p in public_keys}}


MAX_SIGNATURES = 32  # a document with more is refused before any is checked
MAX_DOCUMENT_BYTES = 1 << 20
MAX_DEPTH = 16


def strict_loads(payload: bytes | str, what: str = "document") -> Any:
    """Parse a signed or operator-edited JSON document strictly: at most ``MAX_DOCUMENT_BYTES``
    and ``MAX_DEPTH`` levels, no duplicate keys, no NaN or Infinity. Raises
    UpdateError('malformed')."""
    if len(payload) > MAX_DOCUMENT_BYTES:
        raise UpdateError("malformed", f"{what} is {len(payload)} bytes, over {MAX_DOCUMENT_BYTES}")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            raise ValueError(f"duplicate keys {dup}")
        return dict(items)

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a finite number")

    try:
        doc = json.loads(payload, object_pairs_hook=pairs, parse_constant=constant)
    except (ValueError, RecursionError) as exc:
        raise UpdateError("malformed", f"{what} is not strict JSON: {exc}") from exc
    if _depth(doc) > MAX_DEPTH:
        raise UpdateError("malformed", f"{what} nests deeper than {MAX_DEPTH} levels")
    return doc


def _depth(obj: Any, level: int = 1) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(obj, dict):
        return max([_depth(v, level + 1) for v in obj.values()] or [level])
    if isinstance(obj, list):
        return max([_depth(v, level + 1) for v in obj] or [level])
    return level


def verify_signatures(doc: Any, trust: Trust) -> dict[str, Any]:
    """Return ``doc["signed"]`` when at least ``trust.threshold`` distinct trusted keys signed it."""
    if not isinstance(doc, dict) or not isinstance(doc.get("signed"), dict) \
            or not isinstance(doc.get("signatures"), list):
        raise UpdateError("malformed", "document must have 'signed' and 'signatures'")
    if len(doc["signatures"]) > MAX_SIGNATURES:
        raise UpdateError("malformed", f"{len(doc['signatures'])} signatures, over the limit of "
                          f"{MAX_SIGNATURES}")
    ed = _ed25519()
    message = canonical(doc["signed"])
    valid: set[str] = set()
    unknown, bad = [], []
    for entry in doc["signatures"]:
        kid = entry.get("keyid") if isinstance(entry, dict) else None
        if kid not in trust.keys:
            unknown.append(str(kid))
            continue
        try:
            ed.Ed25519PublicKey.from_public_bytes(trust.keys[kid]).verify(
                base64.b64decode(entry["sig"], validate=True), message)
            valid.add(kid)
        except Exception:  # InvalidSignature, bad base64, wrong length
            bad.append(kid)
    if len(valid) >= trust.threshold:
        return dict(doc["signed"])
    if bad:
        raise UpdateError("bad_signature", f"invalid signature from key(s) {bad}; "
                          f"{len(valid)} valid of {trust.threshold} required")
    if unknown:
        raise UpdateError("unknown_key", f"signed by untrusted key(s) {unknown}; "
                          f"{len(valid)} valid of {trust.threshold} required")
    raise UpdateError("below_threshold", f"{len(valid)} valid signature(s) of {trust.threshold} required")


def rotate_trust(current: Trust, new_doc: Any) -> Trust:
    """Accept a new trust file only if a threshold of the *current* keys signed it."""
    verify_signatures(new_doc, current)
    new = parse_trust(new_doc, "new trust")
    if new.version <= current.version:
        raise UpdateError("trust_rollback", f"trust version {new.version} <= current {current.version}")
    return new


def now_iso() -> str:
    return datetime.now(UTC).strftime(_ISO)


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, _ISO).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Release:
    """The signed part of a release manifest, checked for shape."""

    name: str
    version: str
    channel: str
    bundle_sha256: str
    bundle_size: int
    chunk_size: int
    chunks: tuple[str, ...]
    runtime_min: str
    runtime_max: str
    profiles: tuple[str, ...]
    arches: tuple[str, ...]
    created: str
    expires: str
    bundle_manifest_sha256: str

    @classmethod
    def from_signed(cls, s: dict[str, Any]) -> Release:
        try:
            if s["format"] != RELEASE_FORMAT or int(s["format_version"]) != 1:
                raise ValueError("unknown release format")
            rel = cls(
                name=str(s["name"]), version=str(s["version"]), channel=str(s["channel"]),
                bundle_sha256=str(s["bundle_sha256"]), bundle_size=int(s["bundle_size"]),
                chunk_size=int(s["chunk_size"]), chunks=tuple(str(c) for c in s["chunks"]),
                runtime_min=str(s["runtime"]["min"]), runtime_max=str(s["runtime"]["max_exclusive"]),
                profiles=tuple(s["targets"]["profiles"]), arches=tuple(s["targets"]["arches"]),
                created=str(s["created"]), expires=str(s["expires"]),
                bundle_manifest_sha256=str(s["bundle_manifest_sha256"]))
            parse_semver(rel.version)
            parse_time(rel.expires)
        except (KeyError, TypeError, ValueError) as exc:
            raise UpdateError("malformed", f"release manifest: {exc}") from exc
        expected = -(-rel.bundle_size // rel.chunk_size) if rel.chunk_size > 0 else -1
        if rel.chunk_size <= 0 or len(rel.chunks) != expected or rel.bundle_size <= 0:
            raise UpdateError("malformed", "chunk count does not match bundle_size / chunk_size")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", rel.channel):
            raise UpdateError("malformed", f"bad channel name {rel.channel!r}")
        return rel


def chunk_hashes(data_path: Path, chunk_size: int) -> list[str]:
    out = []
    with open(data_path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            out.append(hashlib.sha256(block).hexdigest())
    return out


def check_release(rel: Release, *, installed: str, profile: str, arch: str, max_bytes: int,
                  runtime_version: str, now: datetime | None = None) -> None:
    """Every check that needs no download; raises UpdateError with a reason code."""
    when = now or datetime.now(UTC)
    if parse_time(rel.expires) <= when:
        raise UpdateError("expired", f"release {rel.version} expired at {rel.expires}")
    if semver_key(rel.version) <= semver_key(installed):
        raise UpdateError("not_newer", f"release {rel.version} is not above the installed "
                          f"{installed} (anti-rollback)")
    if rel.bundle_size > max_bytes:
        raise UpdateError("too_large", f"bundle_size {rel.bundle_size} exceeds the configured "
                          f"maximum {max_bytes}")
    if "*" not in rel.profiles and profile not in rel.profiles:
        raise UpdateError("incompatible_target", f"profile {profile} not in {list(rel.profiles)}")
    if "*" not in rel.arches and arch not in rel.arches:
        raise UpdateError("incompatible_target", f"arch {arch} not in {list(rel.arches)}")
    ours = parse_semver(runtime_version)
    if not parse_semver(rel.runtime_min) <= ours < parse_semver(rel.runtime_max):
        raise UpdateError("incompatible_runtime", f"runtime {runtime_version} outside "
                          f"[{rel.runtime_min}, {rel.runtime_max})")
