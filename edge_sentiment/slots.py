"""A/B model slots in a state dir, with an atomic ``current`` switch and rollback.

Layout::

    STATE/slots/a/       a bundle directory
    STATE/slots/b/       the other one
    STATE/current        symlink -> slots/a or slots/b (switched by atomic rename)
    STATE/state.json     installed version, highest version ever installed

A new bundle is unpacked into the idle slot, fsynced, loaded and self-tested in
a fresh classifier, and only then made current. ``current`` always names a
complete, tested slot, so a kill -9 at any point leaves a loadable model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .bundle import MANIFEST_FILE, ArchiveLimits, default_bundle_path, extract_tar, open_bundle, sha256_file
from .classifier import SentimentClassifier
from .errors import EdgeSentimentError, ManifestError, SelfTestError, UpdateError, UpdateReason
from .manifest import semver_key

log = logging.getLogger(__name__)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    for path in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        _fsync_dir(path)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class SlotStore:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir
        self.slots = state_dir / "slots"
        self.current_link = state_dir / "current"
        self.state_file = state_dir / "state.json"

    # -- state ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def installed_version(self) -> str:
        """The anti-rollback floor: the higher of the recorded highest version and the current
        slot's version (a half-written or stale state file never lowers it)."""
        current = self.current_version()
        recorded = self.state().get("highest_version")
        try:
            if isinstance(recorded, str) and semver_key(recorded) > semver_key(current):
                return recorded
        except ManifestError:
            pass  # a corrupt record: the current slot is the floor
        return current

    def mark_good(self, version: str) -> None:
        """Record that ``version`` passed its health window (the floor is kept)."""
        write_json_atomic(self.state_file, {**self.state(), "good_version": version,
                                            "highest_version": self.installed_version()})

    def current_version(self) -> str:
        return open_bundle(self.current()).manifest.version

    def current(self) -> Path:
        return self.current_link.resolve()

    def idle_slot(self) -> Path:
        active = self.current().name if self.current_link.exists() else "b"
        return self.slots / ("b" if active == "a" else "a")

    # -- setup ------------------------------------------------------------
    def ensure(self, seed: Path | None = None) -> None:
        """Create the layout; seed slot a with ``seed`` (default: the packaged bundle)."""
        self.slots.mkdir(parents=True, exist_ok=True)
        if self.current_link.exists():
            return
        if self.current_link.is_symlink():  # dangling: repair from whichever slot is whole
            for name in ("a", "b"):
                if (self.slots / name / MANIFEST_FILE).is_file():
                    self._switch(self.slots / name)
                    return
        target = self.slots / "a"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(seed or default_bundle_path(), target)
        _fsync_tree(target)
        self._switch(target)
        write_json_atomic(self.state_file, {"highest_version": self.current_version()})

    def _switch(self, target: Path) -> None:
        tmp = self.root / f".current.{os.getpid()}"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(Path("slots") / target.name, tmp)
        os.replace(tmp, self.current_link)
        _fsync_dir(self.root)

    # -- install ----------------------------------------------------------
    def unpack(self, archive: Path, expect_name: str, expect_version: str,
               expect_manifest_sha: str, limits: ArchiveLimits | None = None) -> Path:
        """Unpack into the idle slot and check the inner manifest against the signed one."""
        slot = self.idle_slot()
        if slot.exists():
            shutil.rmtree(slot)
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            try:
                root = extract_tar(archive, Path(tmp) / "unpacked", limits or ArchiveLimits())
            except EdgeSentimentError as exc:
                raise UpdateError(UpdateReason.UNSAFE_ARCHIVE, str(exc)) from exc
            inner = root / MANIFEST_FILE
            if not inner.is_file() or sha256_file(inner) != expect_manifest_sha:
                raise UpdateError(UpdateReason.MANIFEST_MISMATCH, "bundle manifest.json does not match the "
                                  "signed bundle_manifest_sha256")
            try:
                manifest = open_bundle(root).manifest
            except EdgeSentimentError as exc:
                raise UpdateError(UpdateReason.BAD_BUNDLE, str(exc)) from exc
            if (manifest.name, manifest.version) != (expect_name, expect_version):
                raise UpdateError(UpdateReason.MANIFEST_MISMATCH, f"bundle says {manifest.name} "
                                  f"{manifest.version}, release says {expect_name} {expect_version}")
            shutil.move(str(root), slot)
        slot.chmod(0o755)
        _fsync_tree(slot)
        return slot

    def step_back(self, load: dict[str, Any], revoked: tuple[str, ...]) -> SentimentClassifier:
        """Make the previous slot current again (a revoked version is running), if it holds a
        bundle whose version is not revoked itself; the anti-rollback floor is unchanged."""
        previous = self.idle_slot()
        if not (previous / MANIFEST_FILE).is_file():
            raise UpdateError(UpdateReason.REVOKED, "no previous slot to step back to")
        version = open_bundle(previous).manifest.version
        if version in revoked:
            raise UpdateError(UpdateReason.REVOKED, f"the previous slot's {version} is revoked too")
        return self.activate(previous, load)

    def activate(self, slot: Path, load: dict[str, Any]) -> SentimentClassifier:
        """Load and self-test ``slot`` in a fresh classifier, then make it current.

        Raises UpdateError('self_test_failed' / 'load_failed'); ``current`` is untouched then.
        """
        try:
            fresh = SentimentClassifier.load(slot, **load)
        except EdgeSentimentError as exc:
            reason = UpdateReason.SELF_TEST_FAILED if isinstance(exc, SelfTestError) \
                else UpdateReason.LOAD_FAILED
            raise UpdateError(reason, str(exc)) from exc
        previous = self.current()
        version = fresh.bundle.manifest.version
        floor = self.installed_version()
        if semver_key(version) > semver_key(floor):  # durable before the switch (kill -9)
            write_json_atomic(self.state_file, {"highest_version": version})
        self._switch(slot)
        try:
            SentimentClassifier.load(self.current_link, **load)  # the switched link loads
        except EdgeSentimentError as exc:
            self._switch(previous)
            raise UpdateError(UpdateReason.ROLLED_BACK, f"model failed after the switch: {exc}") from exc
        return fresh
