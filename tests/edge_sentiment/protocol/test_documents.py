"""The protocol's documents in both directions, and its topics."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_sentiment.errors import UpdateError, UpdateReason
from edge_sentiment.protocol import (
    DeviceTopic,
    Release,
    Topics,
    build_release,
    device_of,
    format_time,
    parse_time,
    parse_trust,
)
from edge_sentiment.protocol.signing import generate_key, make_trust

NOW = datetime(2026, 12, 3, 12, 0, 1, 250_000, tzinfo=UTC)


def test_a_built_release_reads_back_the_same(tmp_path: Path) -> None:
    bundle = tmp_path / "b.tar"
    bundle.write_bytes(b"x" * 5000)
    rel = build_release(name="m", version="1.2.3-rc.1", channel="beta", bundle=bundle,
                        chunk_size=1024, bundle_manifest_sha256="a" * 64, runtime_max="2.0.0",
                        expires_days=1, profiles=["raspberry-pi-5"], now=NOW)
    assert len(rel.chunks) == 5 and rel.chunk_length(4) == 904
    assert rel.created == "2026-12-03T12:00:01Z" and rel.expires == "2026-12-04T12:00:01Z"
    assert Release.from_signed(rel.to_signed()) == rel
    assert parse_time(rel.created) == NOW.replace(microsecond=0)
    assert format_time(parse_time(rel.expires)) == rel.expires


@pytest.mark.parametrize("change", [{"version": "1.0"}, {"version": "1.0.0+build.1"},
                                    {"channel": "a/b"}, {"channel": "#"}, {"chunks": []},
                                    {"created": "yesterday"}, {"format_version": 2},
                                    {"bundle_size": 0}])
def test_a_malformed_release_is_refused_with_its_reason(tmp_path: Path, change: dict) -> None:
    bundle = tmp_path / "b.tar"
    bundle.write_bytes(b"x" * 10)
    good = build_release(name="m", version="1.0.0", channel="stable", bundle=bundle,
                         chunk_size=4, bundle_manifest_sha256="a" * 64, runtime_max="2.0.0",
                         expires_days=1, now=NOW).to_signed()
    with pytest.raises(UpdateError) as err:
        Release.from_signed({**good, **change})
    assert err.value.reason is UpdateReason.MALFORMED


def test_trust_reads_back_what_make_trust_builds() -> None:
    pubs = [generate_key()[1] for _ in range(2)]
    trust = parse_trust({"signed": make_trust(pubs, threshold=2, version=3)})
    assert (trust.version, trust.threshold, sorted(trust.keys.values())) == (3, 2, sorted(pubs))
    assert parse_trust({"signed": trust.to_signed()}) == trust


def test_topics_are_built_and_parsed_in_one_place() -> None:
    t = Topics("site/a")
    assert t.device("dev-1", DeviceTopic.METRICS) == "site/a/devices/dev-1/metrics"
    assert device_of(t.device("dev-1", DeviceTopic.ALERTS)) == ("dev-1", "alerts")
    assert device_of("site/a/devices/a+b/metrics") is None
    assert t.manifest("stable") == "site/a/updates/stable/manifest"
    assert t.trust() == "site/a/updates/trust"
    chunk = t.chunk("stable", "1.0.0", 7)
    assert t.chunk_index(chunk, "stable", "1.0.0") == "7"
    assert t.chunk_index(chunk, "stable", "1.0.1") is None
    for bad in ("", "a/+", "#", "a//b"):
        with pytest.raises(ValueError, match="prefix"):
            Topics(bad)


def test_every_reason_code_is_documented_and_only_those() -> None:
    import re

    doc = (Path(__file__).parents[3] / "docs" / "agent.md").read_text()
    section = doc.split("## Reason codes", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z_]+)` \|.*\| (yes|no) \|$", section, re.M))
    assert set(rows) == {r.value for r in UpdateReason}
    # "again" is yes exactly for the transient verdicts and the broken transfers (the updater
    # drops those downloads without a final verdict)
    transfer = {UpdateReason.SIZE_MISMATCH, UpdateReason.BUNDLE_HASH_MISMATCH,
                UpdateReason.IO_ERROR}
    assert {r for r in UpdateReason if rows[r.value] == "yes"} == \
        {r for r in UpdateReason if r.transient} | transfer
    codes = set(re.findall(r"`([a-z]+_[a-z_]+)`", doc.split("## Security model", 1)[1]
                           .split("\n## ", 1)[0]))
    fields = {"bundle_size", "max_bundle_bytes", "faults.ignored_chunks"}  # config and document
    assert codes - fields <= {r.value for r in UpdateReason}, codes - fields
