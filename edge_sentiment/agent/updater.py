"""Signed model updates over MQTT: manifest -> chunks -> verify -> install -> swap.

Download state lives in ``STATE/download/``: the signed manifest, a staging file
written chunk by chunk at its offset (bounded memory), and the set of chunks
already received, so a restarted agent resumes instead of starting over.
"""

from __future__ import annotations

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
from ..classifier import SentimentClassifier
from ..errors import UpdateError
from ..release import Release, Trust, check_release, parse_trust, rotate_trust, verify_signatures
from ..slots import SlotStore, write_json_atomic
from .config import AgentConfig

log = logging.getLogger(__name__)
Report = Callable[[str, dict[str, Any]], None]


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
        self._seen: set[str] = set()

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
            doc = json.loads(payload)
            new = rotate_trust(self.trust(), doc)
        except (ValueError, UpdateError) as exc:
            reason = exc.reason if isinstance(exc, UpdateError) else "malformed"
            if reason != "trust_rollback":
                self.report("rejected", {"reason": reason, "detail": str(exc), "kind": "trust"})
            return
        write_json_atomic(self.cfg.state_dir / "trust.json", doc)
        self.report("trust_rotated", {"trust_version": new.version, "keys": sorted(new.keys)})

    # -- manifest --------------------------------------------------------------
    def on_manifest(self, payload: bytes) -> None:
        digest = hashlib.sha256(payload).hexdigest()
        if digest in self._seen or not payload:
            return
        self._seen.add(digest)
        try:
            rel = self._verify_manifest(payload)
        except UpdateError as exc:
            self.report("rejected", {"reason": exc.reason, "detail": exc.detail})
            return
        if self.release and self.release.version == rel.version and \
                self.release.bundle_sha256 == rel.bundle_sha256:
            return  # already downloading this one
        self._start(rel, payload)

    def _verify_manifest(self, payload: bytes) -> Release:
        try:
            doc = json.loads(payload)
        except ValueError as exc:
            raise UpdateError("malformed", f"manifest is not JSON: {exc}") from exc
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
        """After a restart: pick the download up where it stopped, if still valid."""
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
        self._seen.add(hashlib.sha256(path.read_bytes()).hexdigest())
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

    def _reject(self, reason: str, detail: str) -> None:
        version = self.release.version if self.release else None
        self._drop()
        self.report("rejected", {"reason": reason, "detail": detail, "version": version})

    # -- chunks ----------------------------------------------------------------
    def on_chunk(self, topic: str, payload: bytes) -> None:
        rel = self.release
        if rel is None:
            return
        base = chunk_topic(self.cfg.prefix, rel.channel, rel.version) + "/"
        if not topic.startswith(base):
            return  # another release's chunk topic: not ours
        try:
            index = int(topic[len(base):])
        except ValueError:
            return self._reject("bad_chunk", f"chunk topic {topic!r} has no index")
        if not 0 <= index < len(rel.chunks):
            return self._reject("bad_chunk", f"chunk index {index} outside 0..{len(rel.chunks) - 1}")
        if index in self._have:
            return
        expected = min(rel.chunk_size, rel.bundle_size - index * rel.chunk_size)
        if len(payload) != expected:
            return self._reject("truncated_chunk" if len(payload) < expected else "oversized_chunk",
                                f"chunk {index} is {len(payload)} bytes, expected {expected}")
        if hashlib.sha256(payload).hexdigest() != rel.chunks[index]:
            return self._reject("chunk_hash_mismatch", f"chunk {index} sha256 does not match")
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
            slot = self.slots.unpack(part, rel.name, rel.version, rel.bundle_manifest_sha256)
        except UpdateError as exc:
            return self._reject(exc.reason, exc.detail)
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
