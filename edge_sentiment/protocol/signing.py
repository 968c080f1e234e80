"""Signed documents: canonical JSON, strict parsing, Ed25519 keys, signatures and trust.

A document is ``{"signed": {...}, "signatures": [{"keyid", "sig"}]}``. Signatures
are Ed25519 over the canonical JSON of ``signed`` (sorted keys, no spaces).
A key id is the first 16 hex digits of the sha256 of the raw public key.
``cryptography`` is imported lazily: it comes with the ``agent`` extra.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UpdateError, UpdateReason, missing_extra

TRUST_FORMAT = "edge-sentiment-trust"
MAX_SIGNATURES = 32  # a document with more is refused before any is checked
MAX_DOCUMENT_BYTES = 1 << 20
MAX_DEPTH = 16
R = UpdateReason


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:
        raise missing_extra("cryptography", "agent") from exc
    return ed25519


def _raw_public(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization as s

    return bytes(key.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw))


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def generate_key() -> tuple[bytes, bytes]:
    """Return (private raw 32 bytes, public raw 32 bytes)."""
    from cryptography.hazmat.primitives import serialization as s

    private = _ed25519().Ed25519PrivateKey.generate()
    priv = private.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption())
    return priv, _raw_public(private)


def read_key(path: Path) -> bytes:
    """A key file holds base64 of the 32 raw bytes."""
    try:
        raw = base64.b64decode(path.read_text().strip(), validate=True)
    except (OSError, ValueError) as exc:
        raise UpdateError(R.BAD_KEY, f"{path}: cannot read a base64 Ed25519 key: {exc}") from exc
    if len(raw) != 32:
        raise UpdateError(R.BAD_KEY, f"{path}: expected 32 key bytes, got {len(raw)}")
    return raw


def sign_document(signed: dict[str, Any], private_keys: list[bytes]) -> dict[str, Any]:
    ed = _ed25519()
    sigs = []
    for priv in private_keys:
        key = ed.Ed25519PrivateKey.from_private_bytes(priv)
        sigs.append({"keyid": key_id(_raw_public(key)),
                     "sig": base64.b64encode(key.sign(canonical(signed))).decode()})
    return {"signed": signed, "signatures": sigs}


def strict_loads(payload: bytes | str, what: str = "document") -> Any:
    """Parse a signed or operator-edited JSON document strictly: at most ``MAX_DOCUMENT_BYTES``
    and ``MAX_DEPTH`` levels, no duplicate keys, no NaN or Infinity. Raises
    UpdateError(MALFORMED)."""
    if len(payload) > MAX_DOCUMENT_BYTES:
        raise UpdateError(R.MALFORMED, f"{what} is {len(payload)} bytes, over {MAX_DOCUMENT_BYTES}")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            raise ValueError(f"duplicate keys {dup}")
        return dict(items)

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a finite number")

    def finite(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):  # 1e400 reads as infinity
            raise ValueError(f"{text[:20]} is not a finite number")
        return value

    try:
        doc = json.loads(payload, object_pairs_hook=pairs, parse_constant=constant,
                         parse_float=finite)
    except (ValueError, RecursionError) as exc:
        raise UpdateError(R.MALFORMED, f"{what} is not strict JSON: {exc}") from exc
    if _depth(doc) > MAX_DEPTH:
        raise UpdateError(R.MALFORMED, f"{what} nests deeper than {MAX_DEPTH} levels")
    return doc


def _depth(obj: Any, level: int = 1) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(obj, dict):
        return max([_depth(v, level + 1) for v in obj.values()] or [level])
    if isinstance(obj, list):
        return max([_depth(v, level + 1) for v in obj] or [level])
    return level


@dataclass(frozen=True)
class Role:
    """Keys that sign one kind of document, and how many of them must."""

    threshold: int
    keys: dict[str, bytes]  # keyid -> raw public key


@dataclass(frozen=True)
class Trust:
    """The keys a device trusts and how many of them must sign; the release keys sign releases
    and trust rotations, the optional ``rollout`` role signs rollout directives."""

    version: int
    threshold: int
    keys: dict[str, bytes]  # keyid -> raw public key
    rollout: Role | None = None

    def rollout_trust(self) -> Trust:
        """The rollout role as a Trust, for ``verify_signatures``; UpdateError without one."""
        if self.rollout is None:
            raise UpdateError(R.NO_ROLLOUT_ROLE, "the trust file names no rollout role")
        return Trust(self.version, self.rollout.threshold, self.rollout.keys)

    def to_signed(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": TRUST_FORMAT, "version": self.version,
                               "threshold": self.threshold, "keys": _b64(self.keys)}
        if self.rollout is not None:
            out["roles"] = {"rollout": {"threshold": self.rollout.threshold,
                                        "keys": _b64(self.rollout.keys)}}
        return out


def _b64(keys: dict[str, bytes]) -> dict[str, str]:
    return {kid: base64.b64encode(p).decode() for kid, p in keys.items()}


def _keys(table: Any, threshold: Any, where: str) -> tuple[dict[str, bytes], int]:
    """Checked keys and threshold of the trust document or one of its roles."""
    try:
        keys = {str(kid): base64.b64decode(pub, validate=True) for kid, pub in table.items()}
        count = int(threshold)
    except (AttributeError, TypeError, ValueError) as exc:
        raise UpdateError(R.BAD_TRUST, f"{where}: malformed keys: {exc}") from exc
    for kid, pub in keys.items():
        if len(pub) != 32 or key_id(pub) != kid:
            raise UpdateError(R.BAD_TRUST, f"{where}: key {kid} does not match its public key")
    if not 1 <= count <= len(keys):
        raise UpdateError(R.BAD_TRUST, f"{where}: threshold {count} not in 1..{len(keys)}")
    return keys, count


def parse_trust(doc: Any, where: str = "trust") -> Trust:
    try:
        signed = doc["signed"]
        if signed["format"] != TRUST_FORMAT:
            raise ValueError(f"format must be {TRUST_FORMAT}")
        version, roles = int(signed["version"]), signed.get("roles", {})
        keys, threshold = _keys(signed["keys"], signed["threshold"], where)
        if not isinstance(roles, dict) or set(roles) - {"rollout"}:
            raise ValueError("roles must be a table naming only rollout")
        rollout = None
        if "rollout" in roles:
            role = roles["rollout"]
            if not isinstance(role, dict):
                raise ValueError("roles.rollout must be a table")
            role_keys, role_threshold = _keys(role.get("keys"), role.get("threshold"),
                                              f"{where}: roles.rollout")
            rollout = Role(role_threshold, role_keys)
    except (KeyError, TypeError, ValueError) as exc:
        raise UpdateError(R.BAD_TRUST, f"{where}: malformed trust document: {exc}") from exc
    return Trust(version, threshold, keys, rollout)


def make_trust(public_keys: list[bytes], threshold: int, version: int = 1,
               rollout_keys: list[bytes] | None = None, rollout_threshold: int = 1
               ) -> dict[str, Any]:
    """The signed part of a trust document (``parse_trust`` reads it back)."""
    role = Role(rollout_threshold, {key_id(p): p for p in rollout_keys}) if rollout_keys else None
    return Trust(version, threshold, {key_id(p): p for p in public_keys}, role).to_signed()


def verify_signatures(doc: Any, trust: Trust) -> dict[str, Any]:
    """Return ``doc["signed"]`` when at least ``trust.threshold`` distinct trusted keys signed it."""
    if not isinstance(doc, dict) or not isinstance(doc.get("signed"), dict) \
            or not isinstance(doc.get("signatures"), list):
        raise UpdateError(R.MALFORMED, "document must have 'signed' and 'signatures'")
    if len(doc["signatures"]) > MAX_SIGNATURES:
        raise UpdateError(R.MALFORMED, f"{len(doc['signatures'])} signatures, over the limit of "
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
        raise UpdateError(R.BAD_SIGNATURE, f"invalid signature from key(s) {bad}; "
                          f"{len(valid)} valid of {trust.threshold} required")
    if unknown:
        raise UpdateError(R.UNKNOWN_KEY, f"signed by untrusted key(s) {unknown}; "
                          f"{len(valid)} valid of {trust.threshold} required")
    raise UpdateError(R.BELOW_THRESHOLD, f"{len(valid)} valid signature(s) of {trust.threshold} "
                      "required")


def rotate_trust(current: Trust, new_doc: Any) -> Trust:
    """Accept a new trust file only if a threshold of the *current* keys signed it."""
    verify_signatures(new_doc, current)
    new = parse_trust(new_doc, "new trust")
    if new.version <= current.version:
        raise UpdateError(R.TRUST_ROLLBACK, f"trust version {new.version} <= current "
                          f"{current.version}")
    return new
