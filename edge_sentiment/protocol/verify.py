"""The update verification as an I/O-free state machine over documents (after python-tuf's
``TrustedMetadataSet``): trust, then one release, then its chunks, then the whole bundle.

Each step checks what comes against what was accepted before it and raises
:class:`~edge_sentiment.errors.UpdateError` with an :class:`UpdateReason`, or returns a verdict.
The agent's updater does the I/O around it (files, subscriptions, slots); tests drive it
directly, without a broker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..errors import UpdateError, UpdateReason
from .release import Release, check_release
from .rollout import Directive, check_directive, gate
from .signing import Trust, rotate_trust, strict_loads, verify_signatures

R = UpdateReason


@dataclass(frozen=True)
class DeviceFacts:
    """What a release is checked against on one device."""

    channel: str
    installed: str
    profile: str
    arch: str
    runtime_version: str
    max_bundle_bytes: int
    device_id: str = ""  # its rollout bucket comes from it


class Chunk(StrEnum):
    """The verdict on one chunk message (only ``STORE`` is written)."""

    STORE = "store"
    DUPLICATE = "duplicate"
    BAD_INDEX = "bad_index"
    BAD_SIZE = "bad_size"
    BAD_HASH = "bad_hash"


class UpdateVerifier:
    """Holds the release being fetched and the chunks accepted for it; remembers which
    manifests got a final verdict so the same signed bytes are not judged twice."""

    def __init__(self) -> None:
        self.release: Release | None = None
        self.directive: Directive | None = None  # the newest accepted rollout directive
        self.min_sequence = 0  # a directive must be above this (restored after a restart)
        self.have: set[int] = set()
        self._final: set[str] = set()  # digests of manifests with a final verdict
        self._digest = ""  # the digest of the release being fetched

    # -- trust ----------------------------------------------------------------
    @staticmethod
    def rotate(current: Trust, payload: bytes) -> tuple[Trust, dict[str, Any]]:
        """A new trust document, accepted when a threshold of ``current`` keys signed it and
        its version is higher; returns the new trust and the parsed document to store."""
        doc = strict_loads(payload, "trust")
        return rotate_trust(current, doc), doc  # rotate_trust checked that it is a dict

    # -- manifest --------------------------------------------------------------
    def judged(self, payload: bytes) -> bool:
        """True when this exact manifest already got a final verdict (or is being fetched)."""
        return hashlib.sha256(payload).hexdigest() in self._final

    def check_manifest(self, payload: bytes, trust: Trust | UpdateError, device: DeviceFacts,
                       now: datetime | None = None) -> Release:
        """Verify a manifest without changing state. ``trust`` is the loaded trust, or the
        error loading it failed with (then the verdict is that error's, transient)."""
        if isinstance(trust, UpdateError):
            raise trust
        rel = Release.from_signed(verify_signatures(strict_loads(payload, "manifest"), trust))
        if rel.channel != device.channel:
            raise UpdateError(R.WRONG_CHANNEL, f"release for {rel.channel}, device on "
                              f"{device.channel}")
        check_release(rel, installed=device.installed, profile=device.profile, arch=device.arch,
                      max_bytes=device.max_bundle_bytes, runtime_version=device.runtime_version,
                      now=now)
        if trust.rollout is not None:  # releases go where a rollout directive sends them
            gate(self.directive, version=rel.version, bundle_sha256=rel.bundle_sha256,
                 device_id=device.device_id)
        return rel

    # -- rollout -----------------------------------------------------------------
    def accept_directive(self, payload: bytes, trust: Trust, channel: str,
                         now: datetime | None = None) -> Directive:
        """A rollout directive signed by the trust's rollout role, newer than the last one."""
        doc = strict_loads(payload, "rollout directive")
        d = Directive.from_signed(verify_signatures(doc, trust.rollout_trust()))
        last = max(self.min_sequence, self.directive.sequence if self.directive else 0)
        check_directive(d, channel=channel, last_sequence=last, now=now)
        self.directive = d
        return d

    def revoked(self, version: str) -> bool:
        """Whether the newest directive revokes ``version`` (a device running it steps back)."""
        return self.directive is not None and version in self.directive.revoked

    def accept_manifest(self, payload: bytes, trust: Trust | UpdateError, device: DeviceFacts,
                        now: datetime | None = None) -> Release | None:
        """Check a manifest and make it the release being fetched. Returns None when it is the
        release already being fetched; raises UpdateError when refused. A refusal for a
        transient reason (``UpdateReason.transient``) may be judged again."""
        digest = hashlib.sha256(payload).hexdigest()
        try:
            rel = self.check_manifest(payload, trust, device, now)
        except UpdateError as exc:
            if not exc.reason.transient:
                self._final.add(digest)
            raise
        self._final.add(digest)
        if self.release and (self.release.version, self.release.bundle_sha256) == \
                (rel.version, rel.bundle_sha256):
            return None
        self.start(rel, digest)
        return rel

    def start(self, rel: Release, digest: str, have: Iterable[int] = ()) -> None:
        """Fetch ``rel`` (from a fresh manifest, or resumed with the chunks already stored)."""
        self.release, self._digest = rel, digest
        self._final.add(digest)
        self.have = {i for i in have if 0 <= i < len(rel.chunks)}

    # -- chunks ------------------------------------------------------------------
    def check_chunk(self, index: str, payload: bytes) -> Chunk:
        """The verdict on a chunk of the current release; ``STORE`` marks it as had."""
        rel = self.release
        if rel is None or not (index.isascii() and index.isdigit()) \
                or not 0 <= int(index) < len(rel.chunks):
            return Chunk.BAD_INDEX
        i = int(index)
        if i in self.have:
            return Chunk.DUPLICATE
        if len(payload) != rel.chunk_length(i):  # forged or broken: the signed one may still come
            return Chunk.BAD_SIZE
        if hashlib.sha256(payload).hexdigest() != rel.chunks[i]:
            return Chunk.BAD_HASH
        self.have.add(i)
        return Chunk.STORE

    @property
    def complete(self) -> bool:
        return self.release is not None and len(self.have) == len(self.release.chunks)

    # -- bundle ------------------------------------------------------------------
    def check_bundle(self, size: int, sha256: str) -> Release:
        """The whole staged bundle against the signed size and hash."""
        rel = self.release
        if rel is None or not self.complete:
            raise UpdateError(R.SIZE_MISMATCH, "no complete release is staged")
        if size != rel.bundle_size:
            raise UpdateError(R.SIZE_MISMATCH, f"staged {size} bytes, manifest says "
                              f"{rel.bundle_size}")
        if sha256 != rel.bundle_sha256:
            raise UpdateError(R.BUNDLE_HASH_MISMATCH, "bundle sha256 does not match the manifest")
        return rel

    def drop(self, final: bool = True) -> Release | None:
        """Stop fetching; unless ``final``, the same manifest may start it again (a broken
        transfer is not a verdict on the signed release). Returns the dropped release."""
        rel, self.release, self.have = self.release, None, set()
        if not final:
            self._final.discard(self._digest)
        return rel
