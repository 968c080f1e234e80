"""The update verification state machine, driven directly with documents: no broker, no files
beyond the bundle bytes a release is built over."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_sentiment.errors import UpdateError, UpdateReason
from edge_sentiment.protocol import Chunk, DeviceFacts, Release, UpdateVerifier, build_release
from edge_sentiment.protocol.signing import Trust, generate_key, key_id, make_trust, sign_document

R = UpdateReason
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
DATA = bytes((i * 7 + i // 251) % 256 for i in range(10240))  # chunks of 4096: the last short
DEVICE = DeviceFacts(channel="stable", installed="1.0.0", profile="generic-x86_64",
                     arch="x86_64", runtime_version="1.5.0", max_bundle_bytes=1 << 20)


@pytest.fixture(scope="module")
def keys() -> list[tuple[bytes, bytes]]:
    return [generate_key() for _ in range(3)]


def trust_of(keys: list[tuple[bytes, bytes]], threshold: int = 1, version: int = 1) -> Trust:
    return Trust(version, threshold, {key_id(pub): pub for _, pub in keys})


def release(tmp_path: Path, **over: object) -> Release:
    bundle = tmp_path / "bundle.tar"
    bundle.write_bytes(DATA)
    args: dict[str, object] = dict(name="m", version="1.1.0", channel="stable", bundle=bundle,
                                   chunk_size=4096, bundle_manifest_sha256="0" * 64,
                                   runtime_max="2.0.0", expires_days=30, now=NOW)
    args.update(over)
    return build_release(**args)  # type: ignore[arg-type]


def signed(rel: Release | dict[str, object], privs: list[bytes]) -> bytes:
    body = rel.to_signed() if isinstance(rel, Release) else rel
    return json.dumps(sign_document(body, privs)).encode()


def test_a_release_is_fetched_chunk_by_chunk_and_checked_whole(tmp_path: Path, keys) -> None:
    rel = release(tmp_path)
    v = UpdateVerifier()
    payload = signed(rel, [keys[0][0]])
    assert v.accept_manifest(payload, trust_of(keys), DEVICE, NOW) == rel
    assert v.judged(payload) and v.accept_manifest(payload, trust_of(keys), DEVICE, NOW) is None
    parts = [DATA[i:i + 4096] for i in range(0, len(DATA), 4096)]
    assert v.check_chunk("2", parts[2]) is Chunk.STORE
    assert v.check_chunk("2", parts[2]) is Chunk.DUPLICATE
    assert v.check_chunk("3", parts[0]) is Chunk.BAD_INDEX
    assert v.check_chunk("٠", parts[0]) is Chunk.BAD_INDEX  # a non-ASCII digit
    assert v.check_chunk("0", parts[0][:-1]) is Chunk.BAD_SIZE
    assert v.check_chunk("0", parts[1]) is Chunk.BAD_HASH
    assert not v.complete
    assert v.check_chunk("0", parts[0]) is Chunk.STORE
    assert v.check_chunk("1", parts[1]) is Chunk.STORE
    assert v.complete
    with pytest.raises(UpdateError) as size:
        v.check_bundle(len(DATA) - 1, hashlib.sha256(DATA).hexdigest())
    with pytest.raises(UpdateError) as digest:
        v.check_bundle(len(DATA), hashlib.sha256(b"other").hexdigest())
    assert (size.value.reason, digest.value.reason) == (R.SIZE_MISMATCH, R.BUNDLE_HASH_MISMATCH)
    assert v.check_bundle(len(DATA), hashlib.sha256(DATA).hexdigest()) == rel


def refusal(v: UpdateVerifier, payload: bytes, trust: Trust | UpdateError,
            device: DeviceFacts = DEVICE) -> UpdateReason:
    before = v.release
    with pytest.raises(UpdateError) as err:
        v.accept_manifest(payload, trust, device, NOW)
    assert v.release is before  # a refused manifest leaves the fetch in progress alone
    return err.value.reason


def test_each_refusal_has_its_reason(tmp_path: Path, keys) -> None:
    v, priv, trust = UpdateVerifier(), keys[0][0], trust_of(keys)
    body = release(tmp_path).to_signed()
    cases = {
        R.MALFORMED: b'{"signed": {}, "signed": {}}',
        R.UNKNOWN_KEY: signed(body, [generate_key()[0]]),
        R.BELOW_THRESHOLD: b'{"signed": {}, "signatures": []}',
        R.WRONG_CHANNEL: signed(release(tmp_path, channel="beta"), [priv]),
        R.EXPIRED: signed(release(tmp_path, now=NOW - timedelta(days=31)), [priv]),
        R.NOT_NEWER: signed(release(tmp_path, version="1.0.0"), [priv]),
        R.INCOMPATIBLE_TARGET: signed(release(tmp_path, arches=["aarch64"]), [priv]),
        R.INCOMPATIBLE_RUNTIME: signed(release(tmp_path, runtime_max="1.5.0"), [priv]),
    }
    for reason, payload in cases.items():
        assert refusal(v, payload, trust) is reason, reason
    small = DeviceFacts(**{**DEVICE.__dict__, "max_bundle_bytes": 1024})
    assert refusal(v, signed(body, [priv]), trust, small) is R.TOO_LARGE
    forged = sign_document(body, [priv])
    forged["signed"] = {**body, "version": "9.0.0"}
    assert refusal(v, json.dumps(forged).encode(), trust) is R.BAD_SIGNATURE
    missing = UpdateError(R.NO_TRUST, "no trust file configured")
    assert refusal(v, signed(body, [priv]), missing) is R.NO_TRUST


def test_a_transient_refusal_is_judged_again_and_a_final_one_is_not(tmp_path: Path, keys) -> None:
    v, rel = UpdateVerifier(), release(tmp_path)
    two = signed(rel, [keys[0][0]])
    assert refusal(v, two, trust_of(keys, threshold=2)) is R.BELOW_THRESHOLD
    assert R.BELOW_THRESHOLD.transient and not v.judged(two)
    assert v.accept_manifest(two, trust_of(keys), DEVICE, NOW) == rel
    old = signed(release(tmp_path, version="0.9.0"), [keys[0][0]])
    assert refusal(v, old, trust_of(keys)) is R.NOT_NEWER
    assert not R.NOT_NEWER.transient and v.judged(old)


def test_a_broken_transfer_may_start_again_but_a_verdict_is_final(tmp_path: Path, keys) -> None:
    v, payload = UpdateVerifier(), signed(release(tmp_path), [keys[0][0]])
    v.accept_manifest(payload, trust_of(keys), DEVICE, NOW)
    assert v.drop(final=False) is not None and not v.judged(payload) and v.release is None
    v.accept_manifest(payload, trust_of(keys), DEVICE, NOW)
    v.drop(final=True)
    assert v.judged(payload)


def test_resume_keeps_only_indexes_of_the_release(tmp_path: Path, keys) -> None:
    v, rel = UpdateVerifier(), release(tmp_path)
    v.start(rel, "d" * 64, have=[0, 2, 7, -1])
    assert v.have == {0, 2} and not v.complete


def test_trust_rotates_only_forward_and_only_when_signed_by_the_current_keys(keys) -> None:
    current = trust_of(keys[:2], threshold=2)
    body = make_trust([keys[2][1]], threshold=1, version=2)
    new, _ = UpdateVerifier.rotate(current, json.dumps(sign_document(body, [keys[0][0],
                                                                            keys[1][0]])).encode())
    assert new.version == 2 and list(new.keys) == [key_id(keys[2][1])]
    with pytest.raises(UpdateError) as few:
        UpdateVerifier.rotate(current, json.dumps(sign_document(body, [keys[0][0]])).encode())
    back = sign_document(make_trust([keys[2][1]], 1, version=1), [keys[0][0], keys[1][0]])
    with pytest.raises(UpdateError) as rollback:
        UpdateVerifier.rotate(current, json.dumps(back).encode())
    assert (few.value.reason, rollback.value.reason) == (R.BELOW_THRESHOLD, R.TRUST_ROLLBACK)
