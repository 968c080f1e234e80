"""Signed model updates over MQTT: manifest -> chunks -> verify -> install -> swap.

The decisions are :class:`~edge_sentiment.protocol.UpdateVerifier`'s (I/O-free); this module
does the I/O around them. Download state lives in ``STATE/download/``: the signed manifest, a
staging file written chunk by chunk at its offset (bounded memory), and the set of chunks
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
from ..errors import UpdateError, UpdateReason
from ..protocol import Chunk, DeviceFacts, Release, Topics, Trust, UpdateVerifier, parse_trust
from ..slots import SlotStore, write_json_atomic
from .config import AgentConfig

log = logging.getLogger(__name__)
Report = Callable[[str, dict[str, Any]], None]
R = UpdateReason


class Updater:
    def __init__(self, cfg: AgentConfig, slots: SlotStore, report: Report,
                 subscribe: Callable[[str], None], unsubscribe: Callable[[str], None],
                 on_new_model: Callable[[SentimentClassifier], None], profile: str) -> None:
        self.cfg, self.slots, self.report = cfg, slots, report
        self.subscribe, self.unsubscribe, self.on_new_model = subscribe, unsubscribe, on_new_model
        self.profile = profile
        self.topics = Topics(cfg.prefix)
        self.dir = cfg.state_dir / "download"
        self.verifier = UpdateVerifier()
        self._last_manifest = b""  # the newest manifest payload, re-checked after a rotation
        self._last_directive = b""  # the newest accepted rollout directive's payload
        self.ignored_chunks = 0  # stray or forged chunk messages, counted and dropped

    @property
    def release(self) -> Release | None:
        return self.verifier.release

    def _device(self) -> DeviceFacts:
        return DeviceFacts(channel=self.cfg.channel, installed=self.slots.installed_version(),
                           profile=self.profile, arch=platform.machine(),
                           runtime_version=__version__, max_bundle_bytes=self.cfg.max_bundle_bytes,
                           device_id=self.cfg.device_id)

    def _chunk_filter(self) -> str | None:
        rel = self.verifier.release
        return None if rel is None else self.topics.chunks(rel.channel, rel.version) + "/+"

    # -- trust -----------------------------------------------------------------
    def trust(self) -> Trust:
        path = self.cfg.trust
        if path is None:
            raise UpdateError(R.NO_TRUST, "no trust file configured; updates are refused")
        local = self.cfg.state_dir / "trust.json"
        source = local if local.is_file() else path
        try:
            return parse_trust(json.loads(source.read_text()), str(source))
        except (OSError, ValueError) as exc:
            raise UpdateError(R.BAD_TRUST, f"{source}: {exc}") from exc

    def _trust_or_error(self) -> Trust | UpdateError:
        try:
            return self.trust()
        except UpdateError as exc:
            return exc

    def on_trust(self, payload: bytes) -> None:
        """A rotated trust file, accepted only if a threshold of current keys signed it."""
        try:
            new, doc = self.verifier.rotate(self.trust(), payload)
        except UpdateError as exc:
            if exc.reason is not R.TRUST_ROLLBACK:
                self.report("rejected", {"reason": exc.reason, "detail": str(exc), "kind": "trust"})
            return
        write_json_atomic(self.cfg.state_dir / "trust.json", doc)
        self.report("trust_rotated", {"trust_version": new.version, "keys": sorted(new.keys)})
        if self._last_manifest and self.verifier.release is None:  # one the old trust refused
            self.on_manifest(self._last_manifest, recheck=True)

    # -- rollout directives ----------------------------------------------------
    def on_directive(self, payload: bytes) -> None:
        """A signed rollout directive: may widen, pause or abort what this device installs, and
        revoke the version it runs (then it steps back to its previous slot)."""
        if not payload or payload == self._last_directive:
            return  # the retained one again, after a reconnect
        try:
            d = self.verifier.accept_directive(payload, self.trust(), self.cfg.channel)
        except UpdateError as exc:
            self.report("rejected", {"reason": exc.reason, "detail": exc.detail,
                                     "kind": "rollout"})
            return
        self._last_directive = payload
        write_json_atomic(self.cfg.state_dir / "rollout.json",
                          {"sequence": d.sequence, "payload": payload.decode()})
        self.report("rollout", {"sequence": d.sequence, "rollout_version": d.version,
                                "share": d.share, "state": d.state.value})
        if self.verifier.revoked(self.slots.current_version()):
            self._step_back(d.revoked)
        if self._last_manifest and self.verifier.release is None:
            self.on_manifest(self._last_manifest, recheck=True)

    def _resume_directive(self) -> None:
        """After a restart: the last accepted directive again (so an older one cannot be
        replayed to a device that forgot it); an expired one still keeps its sequence floor."""
        try:
            saved = json.loads((self.cfg.state_dir / "rollout.json").read_text())
            self.verifier.min_sequence = int(saved["sequence"]) - 1
            self.verifier.accept_directive(str(saved["payload"]).encode(), self.trust(),
                                           self.cfg.channel)
            self._last_directive = str(saved["payload"]).encode()
        except (OSError, ValueError, KeyError, TypeError, UpdateError) as exc:
            log.info("no rollout directive restored: %s", exc)
        finally:
            self.verifier.min_sequence = max(self.verifier.min_sequence,
                                             self.verifier.directive.sequence
                                             if self.verifier.directive else 0)

    def _step_back(self, revoked: tuple[str, ...], reason: UpdateReason = UpdateReason.REVOKED,
                   detail: str = "revoked by the rollout directive",
                   extra: dict[str, Any] | None = None) -> bool:
        running = self.slots.current_version()
        try:
            fresh = self.slots.step_back({"runtime": self.cfg.runtime, "profile": self.cfg.profile},
                                         revoked)
        except UpdateError as exc:
            self.report("rejected", {"reason": exc.reason, "detail": exc.detail,
                                     "version": running})
            return False
        self.on_new_model(fresh)
        self.report("rolled_back", {"version": running, "reason": reason, "detail": detail,
                                    "current": self.slots.current_version(), **(extra or {})})
        return True

    def roll_back_unhealthy(self, detail: str, figures: dict[str, Any]) -> bool:
        """The running version failed its health window: back to the previous slot (the floor
        stays, so the same release is not installed again)."""
        return self._step_back((), UpdateReason.UNHEALTHY, detail, {"health": figures})

    # -- manifest --------------------------------------------------------------
    def on_manifest(self, payload: bytes, recheck: bool = False) -> None:
        if not payload or (self.verifier.judged(payload) and not recheck):
            return
        self._last_manifest = payload
        previous = self._chunk_filter()
        try:
            rel = self.verifier.accept_manifest(payload, self._trust_or_error(), self._device())
        except UpdateError as exc:
            self.report("rejected", {"reason": exc.reason, "detail": exc.detail})
            return
        if rel is None:
            return  # already downloading this one
        if previous:
            self.unsubscribe(previous)
        self._stage(payload)
        self.report("downloading", {"version": rel.version, "chunks": len(rel.chunks),
                                    "bytes": rel.bundle_size})
        self.resume_subscription()

    def _stage(self, payload: bytes) -> None:
        rel = self.verifier.release
        assert rel is not None
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "release.json").write_bytes(payload)
        with open(self.dir / "bundle.part", "wb") as fh:
            fh.truncate(rel.bundle_size)
        self._save_have()

    def resume(self) -> None:
        """After a restart: pick the download up where it stopped, if still valid. Never raises:
        a resume that fails abandons the staged release, says why, and the agent starts on the
        current slot (a crash loop at start would leave the device unmanageable)."""
        self._resume_directive()
        try:
            self._resume()
        except Exception as exc:
            log.exception("abandoning the staged release")
            self.verifier.drop()
            shutil.rmtree(self.dir, ignore_errors=True)
            self.report("rejected", {"reason": R.RESUME_FAILED, "detail": f"{type(exc).__name__}: "
                                     f"{exc}"[:300]})

    def _resume(self) -> None:
        path = self.dir / "release.json"
        if not path.is_file():
            return
        payload = path.read_bytes()
        try:
            rel = self.verifier.check_manifest(payload, self._trust_or_error(), self._device())
            have = json.loads((self.dir / "have.json").read_text())
        except (UpdateError, OSError, ValueError) as exc:
            log.info("dropping stale download: %s", exc)
            self._drop()
            return
        self.verifier.start(rel, hashlib.sha256(payload).hexdigest(), have)
        self.report("downloading", {"version": rel.version, "resumed": True,
                                    "have": len(self.verifier.have), "chunks": len(rel.chunks)})
        self.resume_subscription()
        if self.verifier.complete:
            self._finish()

    def _save_have(self) -> None:
        tmp = self.dir / "have.json.tmp"
        tmp.write_text(json.dumps(sorted(self.verifier.have)))
        os.replace(tmp, self.dir / "have.json")

    def _drop(self, final: bool = True) -> Release | None:
        sub = self._chunk_filter()
        if sub:
            self.unsubscribe(sub)
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.verifier.drop(final)

    def _reject(self, reason: UpdateReason, detail: str, final: bool = False) -> None:
        """Drop the download; unless ``final``, the same manifest may start it again."""
        rel = self._drop(final)
        self.report("rejected", {"reason": reason, "detail": detail,
                                 "version": rel.version if rel else None})

    # -- chunks ----------------------------------------------------------------
    def on_chunk(self, topic: str, payload: bytes) -> None:
        rel = self.verifier.release
        if rel is None:
            return
        index = self.topics.chunk_index(topic, rel.channel, rel.version)
        if index is None:
            return  # another release's chunk topic: not ours
        verdict = self.verifier.check_chunk(index, payload)
        if verdict is Chunk.DUPLICATE:
            return
        if verdict is not Chunk.STORE:
            self.ignored_chunks += 1
            log.warning("ignored a chunk message on %s: %s", topic, verdict.value)
            return
        fd = os.open(self.dir / "bundle.part", os.O_WRONLY)
        try:
            os.pwrite(fd, payload, int(index) * rel.chunk_size)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._save_have()
        if self.verifier.complete:
            self._finish()

    def _finish(self) -> None:
        part = self.dir / "bundle.part"
        try:
            rel = self.verifier.check_bundle(part.stat().st_size,
                                             hashlib.sha256(part.read_bytes()).hexdigest())
        except UpdateError as exc:
            return self._reject(exc.reason, exc.detail)
        self.report("verified", {"version": rel.version})
        try:
            slot = self.slots.unpack(part, rel.name, rel.version, rel.bundle_manifest_sha256,
                                     self._limits())
        except UpdateError as exc:  # the signed bundle itself is bad: final
            return self._reject(exc.reason, exc.detail, final=not exc.reason.transient)
        except OSError as exc:  # a full disk while unpacking: try again when it comes again
            return self._reject(R.DISK_FULL if exc.errno == errno.ENOSPC else R.IO_ERROR, str(exc))
        self.report("installed", {"version": rel.version, "slot": slot.name})
        self._activate(rel.version, slot)

    def _limits(self) -> ArchiveLimits:
        return ArchiveLimits(max_members=self.cfg.max_archive_members,
                             max_member_bytes=min(MAX_MEMBER_BYTES, self.cfg.max_unpacked_bytes),
                             max_total_bytes=self.cfg.max_unpacked_bytes)

    def _activate(self, version: str, slot: Path) -> None:
        load = {"runtime": self.cfg.runtime, "profile": self.cfg.profile}
        try:
            fresh = self.slots.activate(slot, load)
        except UpdateError as exc:
            self._drop()
            self.report("rolled_back", {"version": version, "reason": exc.reason,
                                        "detail": exc.detail,
                                        "current": self.slots.current_version()})
            return
        self._drop()
        self.on_new_model(fresh)
        self.report("active", {"version": version, "backend": fresh.info.backend})

    def resume_subscription(self) -> None:
        """Subscriptions do not survive a clean-session reconnect: subscribe again."""
        sub = self._chunk_filter()
        if sub:
            self.subscribe(sub)
