"""Rollout directives in the verification state machine: signed by the trust's rollout role,
never replayed, gating which devices install a signed release, revoking versions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from edge_sentiment.errors import UpdateError, UpdateReason
from edge_sentiment.protocol import DeviceFacts, Release, UpdateVerifier, build_release
from edge_sentiment.protocol.rollout import Directive, RolloutState, bucket, make_directive
from edge_sentiment.protocol.signing import (
    Role,
    Trust,
    generate_key,
    key_id,
    make_trust,
    parse_trust,
    sign_document,
)

R = UpdateReason
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[bytes, bytes]]:
    return {name: generate_key() for name in ("release", "rollout", "stranger")}


def trust(keys: dict[str, tuple[bytes, bytes]], rollout: bool = True) -> Trust:
    pub = keys["release"][1]
    role = Role(1, {key_id(keys["rollout"][1]): keys["rollout"][1]}) if rollout else None
    return Trust(1, 1, {key_id(pub): pub}, role)


def device(name: str) -> DeviceFacts:
    return DeviceFacts(channel="stable", installed="1.0.0", profile="p", arch="x86_64",
                       runtime_version="1.5.0", max_bundle_bytes=1 << 20, device_id=name)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    bundle = tmp_path_factory.mktemp("r") / "bundle.tar"
    bundle.write_bytes(b"bundle bytes" * 100)
    return build_release(name="m", version="1.1.0", channel="stable", bundle=bundle,
                         chunk_size=512, bundle_manifest_sha256="0" * 64, runtime_max="2.0.0",
                         expires_days=30, now=NOW)


def signed(body: dict, priv: bytes) -> bytes:
    return json.dumps(sign_document(body, [priv])).encode()


def directive(rel: Release, seq: int, share: float, **over: object) -> dict:
    args: dict = dict(channel="stable", sequence=seq, version=rel.version,
                      bundle_sha256=rel.bundle_sha256, share=share, salt="s1",
                      expires=NOW + timedelta(days=1))
    args.update(over)
    return make_directive(**args).to_signed()


def devices_in(share: float, salt: str = "s1") -> tuple[str, str | None]:
    """One device id inside the share and one outside it (None when the share is 1)."""
    ids = [f"pi-{i:03d}" for i in range(200)]
    inside = next(i for i in ids if bucket(i, salt) < share)
    return inside, next((i for i in ids if bucket(i, salt) >= share), None)


def test_buckets_are_stable_and_spread_evenly() -> None:
    ids = [f"dev-{i}" for i in range(10_000)]
    assert bucket("dev-1", "s") == bucket("dev-1", "s") != bucket("dev-1", "t")
    share = sum(bucket(i, "s") < 0.1 for i in ids) / len(ids)
    assert 0.09 < share < 0.11


def test_a_release_goes_only_to_devices_under_the_share(keys, release: Release) -> None:
    inside, outside = devices_in(0.1)
    assert outside is not None
    manifest = signed(release.to_signed(), keys["release"][0])
    for name, expected in ((inside, None), (outside, R.NOT_IN_ROLLOUT)):
        v = UpdateVerifier()
        with pytest.raises(UpdateError) as early:  # before any directive: releases wait
            v.accept_manifest(manifest, trust(keys), device(name), NOW)
        assert early.value.reason is R.NO_DIRECTIVE and early.value.reason.transient
        v.accept_directive(signed(directive(release, 1, 0.1), keys["rollout"][0]),
                           trust(keys), "stable", NOW)
        if expected is None:
            assert v.accept_manifest(manifest, trust(keys), device(name), NOW) == release
        else:
            with pytest.raises(UpdateError) as err:
                v.accept_manifest(manifest, trust(keys), device(name), NOW)
            assert err.value.reason is expected and not v.judged(manifest)
            v.accept_directive(signed(directive(release, 2, 1.0), keys["rollout"][0]),
                               trust(keys), "stable", NOW)  # the share grows to everyone
            assert v.accept_manifest(manifest, trust(keys), device(name), NOW) == release


def test_a_trust_without_a_rollout_role_installs_as_before(keys, release: Release) -> None:
    manifest = signed(release.to_signed(), keys["release"][0])
    assert UpdateVerifier().accept_manifest(manifest, trust(keys, rollout=False),
                                            device("any"), NOW) == release


def refused(v: UpdateVerifier, payload: bytes, t: Trust) -> UpdateReason:
    with pytest.raises(UpdateError) as err:
        v.accept_directive(payload, t, "stable", NOW)
    return err.value.reason


def test_bad_directives_are_refused_each_with_its_reason(keys, release: Release) -> None:
    v, t = UpdateVerifier(), trust(keys)
    body = directive(release, 5, 0.5)
    assert refused(v, signed(body, keys["stranger"][0]), t) is R.UNKNOWN_KEY
    assert refused(v, signed(body, keys["release"][0]), t) is R.UNKNOWN_KEY  # not its role
    assert refused(v, signed(body, keys["rollout"][0]), trust(keys, False)) is R.NO_ROLLOUT_ROLE
    v.accept_directive(signed(body, keys["rollout"][0]), t, "stable", NOW)
    assert refused(v, signed(directive(release, 4, 1.0), keys["rollout"][0]), t) \
        is R.ROLLOUT_REPLAY  # an older one, replayed
    assert refused(v, signed(directive(release, 5, 1.0), keys["rollout"][0]), t) \
        is R.ROLLOUT_REPLAY
    assert refused(v, signed(directive(release, 6, 1.0, channel="beta"), keys["rollout"][0]),
                   t) is R.WRONG_CHANNEL
    late = directive(release, 7, 1.0, expires=NOW - timedelta(seconds=1))
    assert refused(v, signed(late, keys["rollout"][0]), t) is R.EXPIRED
    assert refused(v, signed({**body, "share": 2.0, "sequence": 8}, keys["rollout"][0]), t) \
        is R.MALFORMED
    assert v.directive is not None and v.directive.sequence == 5  # the good one stays


def test_a_directive_cannot_install_what_the_release_keys_did_not_sign(
        keys, release: Release) -> None:
    inside, _ = devices_in(1.0)
    v, t = UpdateVerifier(), trust(keys)
    other = directive(release, 1, 1.0, bundle_sha256="f" * 64)  # names bytes nobody signed
    v.accept_directive(signed(other, keys["rollout"][0]), t, "stable", NOW)
    with pytest.raises(UpdateError) as err:
        v.accept_manifest(signed(release.to_signed(), keys["release"][0]), t, device(inside),
                          NOW)
    assert err.value.reason is R.NOT_IN_ROLLOUT
    forged = signed(release.to_signed(), keys["rollout"][0])  # a "release" by the rollout key
    with pytest.raises(UpdateError) as bad:
        v.accept_manifest(forged, t, device(inside), NOW)
    assert bad.value.reason is R.UNKNOWN_KEY


def test_an_abort_revokes_and_pause_holds(keys, release: Release) -> None:
    inside, _ = devices_in(1.0)
    v, t = UpdateVerifier(), trust(keys)
    manifest = signed(release.to_signed(), keys["release"][0])
    v.accept_directive(signed(directive(release, 1, 1.0, state=RolloutState.PAUSED),
                              keys["rollout"][0]), t, "stable", NOW)
    with pytest.raises(UpdateError) as paused:
        v.accept_manifest(manifest, t, device(inside), NOW)
    assert paused.value.reason is R.NOT_IN_ROLLOUT
    abort = directive(release, 2, 1.0, state=RolloutState.ABORTED, revoked=("1.1.0",))
    v.accept_directive(signed(abort, keys["rollout"][0]), t, "stable", NOW)
    assert v.revoked("1.1.0") and not v.revoked("1.0.0")
    with pytest.raises(UpdateError) as revoked:
        v.accept_manifest(manifest, t, device(inside), NOW)
    assert revoked.value.reason is R.REVOKED
    with pytest.raises(UpdateError):  # an abort that does not revoke its version is malformed
        make_directive(channel="stable", sequence=3, version="1.1.0", bundle_sha256="a" * 64,
                       share=0.0, salt="s", state=RolloutState.ABORTED, expires=NOW)


def test_the_rollout_role_reads_back_from_a_trust_document(keys) -> None:
    body = make_trust([keys["release"][1]], 1, version=2, rollout_keys=[keys["rollout"][1]],
                      rollout_threshold=1)
    t = parse_trust({"signed": body})
    assert t.rollout is not None and list(t.rollout.keys) == [key_id(keys["rollout"][1])]
    assert parse_trust({"signed": t.to_signed()}) == t
    assert Directive.from_signed(Directive.from_signed(
        make_directive(channel="c", sequence=1, version="1.0.0", bundle_sha256="a" * 64,
                       share=0.5, salt="s", expires=NOW).to_signed()).to_signed()).share == 0.5
    for bad in ({"rollout": {"threshold": 2, "keys": {}}}, {"canary": {}}, {"rollout": []}):
        with pytest.raises(UpdateError) as err:
            parse_trust({"signed": {**body, "roles": bad}})
        assert err.value.reason is R.BAD_TRUST


