"""Attack family: signed documents that parse loosely or count signatures twice."""

from __future__ import annotations

import json

import pytest

from edge_sentiment.errors import UpdateError, UpdateReason
from edge_sentiment.protocol.signing import (
    generate_key,
    make_trust,
    parse_trust,
    sign_document,
    strict_loads,
    verify_signatures,
)


@pytest.mark.parametrize("payload", [
    b'{"signed": {"v": 1, "v": 2}, "signatures": []}',  # a duplicate key, nested
    b'{"a": NaN}', b'{"a": -Infinity}', b'{"a": Infinity}',
    b"[" * 200 + b"]" * 200,  # deeper than the limit
    b'{"a": 1} trailing',
    b'{"a": 1e400}', b'{"a": -1e999}',  # overflowing literals read as infinity before the fix
])
def test_loose_json_is_malformed(payload: bytes) -> None:
    with pytest.raises(UpdateError) as err:
        strict_loads(payload)
    assert err.value.reason is UpdateReason.MALFORMED


def _trust(threshold: int) -> tuple[list[bytes], object]:
    keys = [generate_key() for _ in range(2)]
    doc = {"signed": make_trust([pub for _, pub in keys], threshold), "signatures": []}
    return [priv for priv, _ in keys], parse_trust(json.loads(json.dumps(doc)))


def test_one_key_signing_twice_is_one_signature() -> None:
    privs, trust = _trust(2)
    doc = sign_document({"x": 1}, [privs[0]])
    doc["signatures"] = doc["signatures"] * 2
    with pytest.raises(UpdateError) as err:
        verify_signatures(doc, trust)  # type: ignore[arg-type]
    assert err.value.reason is UpdateReason.BELOW_THRESHOLD


def test_a_signature_moved_to_other_content_fails() -> None:
    privs, trust = _trust(1)
    doc = sign_document({"version": "1.0.0"}, [privs[0]])
    doc["signed"] = {"version": "9.0.0"}
    with pytest.raises(UpdateError) as err:
        verify_signatures(doc, trust)  # type: ignore[arg-type]
    assert err.value.reason is UpdateReason.BAD_SIGNATURE


@pytest.mark.parametrize("signatures", [{"keyid": "x"}, "sig", [None, 5, []]])
def test_odd_signature_lists_are_our_error(signatures: object) -> None:
    _, trust = _trust(1)
    doc = {"signed": {"x": 1}, "signatures": signatures}
    with pytest.raises(UpdateError):
        verify_signatures(doc, trust)  # type: ignore[arg-type]
