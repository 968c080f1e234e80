"""Signed model updates over MQTT: manifest -> chunks -> verify -> install -> swap.

Download state lives in ``STATE/download/``: the signed manifest, a staging file
written chunk by chunk at its offset (bounded memory), and the set of chunks
already received, so a restarted agent resumes instead of starting over.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import platform
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..bundle import MAX_MEMBER_BYTES, ArchiveLimits
from ..classifier import SentimentClassifier
from ..errors import UpdateError
from ..release import (
    Release,
    Trust,
    check_release,
    parse_trust,
    rotate_trust,
    strict_loads,
    verify_signatures,
)
from ..slots import SlotStore, write_json_atomic
from .config import AgentConfig

log = logging.getLogger(__name__)
Report = Callable[[str, dict[str, Any]], None]
# Verdicts that may change without the document changing: a key the device does not trust yet
# (the trust rotation may still be on its way), a missing or unreadable trust file, too few
# trusted signatures, a full disk. A manifest rejected for one of these is checked again when
# it comes again; any other verdict on the same signed bytes is final.
TRANSIENT = frozenset({"unknown_key", "below_threshold", "no_trust", "bad_trust", "disk_full",
                       "resume_failed"})


def chunk_topic(prefix: str, channel: str, version: str) -> str:
    return f"{prefix}/updates/{channel}/releases/{version}/chunks"


class Updater:
    def __init__(self, cfg: AgentConfig, slots: SlotStore, report: Report,
                 subscribe: Callable[[str], None], unsubscribe: Callable[[str], None],
                 on_new_model: Callable[[SentimentClassifier], None], profile: str) -> None:
        self.cfg, self.slots, self.report = cfg, slots, report
        self.subscribe, self.unsubscribe, self.on_new_model = subscribe, unsubscribe, on_new_model
        self.profile = profile
        self.dir = cfg.state_dir / "download"
        self.release: Release | None = None
        self._have: set[int] = set()
        self._seen: set[str] = set()  # manifest digests with a final verdict (or in progress)
        self._digest = ""  # the digest of the release being downloaded
        self._last_manifest = b""  # the newest manifest payload, re-checked after a rotation
        self.ignored_chunks = 0  # stray or forged chunk messages, counted and dropped

    # -- trust -----------------------------------------------------------------
    def trust(self) -> Trust:
        path = self.cfg.trust
        if path is None:
            raise UpdateError("no_trust", "no trust file configured; updates are refused")
        local = self.cfg.state_dir / "trust.json"
        source = local if local.is_file() else path
        try:
            return parse_trust(json.loads(source.read_text()), str(source))
        except (OSError, ValueError) as exc:
            raise UpdateError("bad_trust", f"{source}: {exc}") from exc

    def on_trust(self, payload: bytes) -> None:
        """A rotated trust file, accepted only if a threshold of current keys signed it."""
        try:
            doc = strict_loads(payload, "trust")
            new = rotate_trust(self.trust(), doc)
        except (ValueError, UpdateError) as exc:
            reason = exc.reason if isinstance(exc, UpdateError) else "malformed"
            if reason != "trust_rollback":
                self.report("rejected", {"reason": reason, "detail": str(exc), "kind": "trust"})
            return
        write_json_atomic(self.cfg.state_dir / "trust.json", doc)
        self.report("trust_rotated", {"trust_version": new.version, "keys": sorted(new.keys)})
        if self._last_manifest and self.release is None:  # a release the old trust refused
            self.on_manifest(self._last_manifest, recheck=True)

    # -- manifest --------------------------------------------------------------
    def on_manifest(self, payload: bytes, recheck: bool = False) -> None:
        digest = hashlib.sha256(payload).hexdigest()
        if not payload or (digest in self._seen and not recheck):
            return
        self._last_manifest = payload
        self._seen.add(digest)
        try:
            rel = self._verify_manifest(payload)
        except UpdateError as exc:
            if exc.reason in TRANSIENT:
                self._seen.discard(digest)
            self.report("rejected", {"reason": exc.reason, "detail": exc.detail})
            return
        if self.release and self.release.version == rel.version and \
                self.release.bundle_sha256 == rel.bundle_sha256:
            return  # already downloading this one
        self._digest = digest
        self._start(rel, payload)

    def _verify_manifest(self, payload: bytes) -> Release:
        doc = strict_loads(payload, "manifest")
        rel = Release.from_signed(verify_signatures(doc, self.trust()))
        if rel.channel != self.cfg.channel:
            raise UpdateError("wrong_channel", f"release for {rel.channel}, device on {self.cfg.channel}")
        check_release(rel, installed=self.slots.installed_version(), profile=self.profile,
                      arch=platform.machine(), max_bytes=self.cfg.max_bundle_bytes,
                      runtime_version=__version__)
        return rel

    def _start(self, rel: Release, payload: bytes) -> None:
        self._drop()
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "release.json").write_bytes(payload)
        with open(self.dir / "bundle.part", "wb") as fh:
            fh.truncate(rel.bundle_size)
        self._have = set()
        self._save_have()
        self.release = rel
        self.report("downloading", {"version": rel.version, "chunks": len(rel.chunks),
                                    "bytes": rel.bundle_size})
        self.subscribe(chunk_topic(self.cfg.prefix, rel.channel, rel.version) + "/+")

    def resume(self) -> None:
        """After a restart: pick the download up where it stopped, if still valid. Never raises:
        a resume that fails abandons the staged release, says why, and the agent starts on the
        current slot (a crash loop at start would leave the device unmanageable)."""
        try:
            self._resume()
        except Exception as exc:
            log.exception("abandoning the staged release")
            self.release = None
            shutil.rmtree(self.dir, ignore_errors=True)
            self.report("rejected", {"reason": "resume_failed", "detail": f"{type(exc).__name__}: "
                                     f"{exc}"[:300]})

    def _resume(self) -> None:
        path = self.dir / "release.json"
        if not path.is_file():
            return
        try:
            rel = self._verify_manifest(path.read_bytes())
            self._have = set(json.loads((self.dir / "have.json").read_text()))
        except (UpdateError, OSError, ValueError) as exc:
            log.info("dropping stale download: %s", exc)
            self._drop()
            return
        self.release = rel
        self._digest = hashlib.sha256(path.read_bytes()).hexdigest()
        self._seen.add(self._digest)
        self.report("downloading", {"version": rel.version, "resumed": True,
                                    "have": len(self._have), "chunks": len(rel.chunks)})
        self.subscribe(chunk_topic(self.cfg.prefix, rel.channel, rel.version) + "/+")
        if len(self._have) == len(rel.chunks):
            self._finish()

    def _save_have(self) -> None:
        tmp = self.dir / "have.json.tmp"
        tmp.write_text(json.dumps(sorted(self._have)))
        os.replace(tmp, self.dir / "have.json")

    def _drop(self) -> None:
        if self.release is not None:
            self.unsubscribe(chunk_topic(self.cfg.prefix, self.release.channel,
                                         self.release.version) + "/+")
        self.release = None
        self._have = set()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _reject(self, reason: str, detail: str, final: bool = False) -> None:
        """Drop the download; unless ``final``, the same manifest may start it again (a
        broken transfer is not a verdict on the signed release)."""
        version = self.release.version if self.release else None
        if not final:
            self._seen.discard(self._digest)
        self._drop()
        self.report("rejected", {"reason": reason, "detail": detail, "version": version})

    def _ignore(self, topic: str, why: str) -> None:
        self.ignored_chunks += 1
        log.warning("ignored a chunk message on %s: %s", topic, why)

    # -- chunks ----------------------------------------------------------------
    def on_chunk(self, topic: str, payload: bytes) -> None:
        rel = self.release
        if rel is None:
            return
        base = chunk_topic(self.cfg.prefix, rel.channel, rel.version) + "/"
        if not topic.startswith(base):
            return  # another release's chunk topic: not ours
        tail = topic[len(base):]
        if not (tail.isascii() and tail.isdigit()) or not 0 <= int(tail) < len(rel.chunks):
            return self._ignore(topic, "no chunk of this release has that index")
        index = int(tail)
        if index in self._have:
            return
        expected = min(rel.chunk_size, rel.bundle_size - index * rel.chunk_size)
        if len(payload) != expected:  # forged or broken: the signed chunk may still come
            return self._ignore(topic, f"{len(payload)} bytes, expected {expected}")
        if hashlib.sha256(payload).hexdigest() != rel.chunks[index]:
            return self._ignore(topic, "sha256 does not match the signed manifest")
        fd = os.open(self.dir / "bundle.part", os.O_WRONLY)
        try:
            os.pwrite(fd, payload, index * rel.chunk_size)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._have.add(index)
        self._save_have()
        if len(self._have) == len(rel.chunks):
            self._finish()

    def _finish(self) -> None:
        rel = self.release
        assert rel is not None
        part = self.dir / "bundle.part"
        if part.stat().st_size != rel.bundle_size:
            return self._reject("size_mismatch", f"staged {part.stat().st_size} bytes, "
                                f"manifest says {rel.bundle_size}")
        digest = hashlib.sha256(part.read_bytes()).hexdigest()
        if digest != rel.bundle_sha256:
            return self._reject("bundle_hash_mismatch", "bundle sha256 does not match the manifest")
        self.report("verified", {"version": rel.version})
        try:
            limits = ArchiveLimits(max_members=self.cfg.max_archive_members,
                                   max_member_bytes=min(MAX_MEMBER_BYTES,
                                                        self.cfg.max_unpacked_bytes),
                                   max_total_bytes=self.cfg.max_unpacked_bytes)
            slot = self.slots.unpack(part, rel.name, rel.version, rel.bundle_manifest_sha256,
                                     limits)
        except UpdateError as exc:  # the signed bundle itself is bad: final
            return self._reject(exc.reason, exc.detail, final=exc.reason not in TRANSIENT)
        except OSError as exc:  # a full disk while unpacking: try again when it comes again
            return self._reject("disk_full" if exc.errno == errno.ENOSPC else "io_error",
                                str(exc))
        self.report("installed", {"version": rel.version, "slot": slot.name})
        self._activate(rel, slot)

    def _activate(self, rel: Release, slot: Path) -> None:
        load = {"runtime": self.cfg.runtime, "profile": self.cfg.profile}
        try:
            fresh = self.slots.activate(slot, load)
        except UpdateError as exc:
            self._drop()
            self.report("rolled_back", {"version": rel.version, "reason": exc.reason,
                                        "detail": exc.detail,
                                        "current": self.slots.current_version()})
            return
        self._drop()
        self.on_new_model(fresh)
        self.report("active", {"version": rel.version, "backend": fresh.info.backend})

    def resume_subscription(self) -> None:
        """Subscriptions do not survive a clean-session reconnect: subscribe again."""
        if self.release is not None:
            self.subscribe(chunk_topic(self.cfg.prefix, self.release.channel,
                                       self.release.version) + "/+")
