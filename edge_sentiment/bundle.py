"""Model bundles on disk: a directory, or the same content as one ``.tar``.

A bundle holds ``manifest.json``, ``tokenizer.json``, model artifacts and a model
card. Loading validates the manifest, refuses paths that leave the bundle and
verifies each file's sha256 before it is used.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import posixpath
import shutil
import tarfile
import tempfile
import weakref
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import BundleError, IntegrityError, ManifestError, UnsafePathError
from .manifest import Artifact, Manifest, check_member_path, parse_manifest

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
MAX_MEMBER_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    """What a bundle archive may unpack to; checked from the headers before any byte is
    written. The defaults are a hundred times a real bundle (12 MB in 8 files)."""

    max_members: int = 256
    max_member_bytes: int = MAX_MEMBER_BYTES
    max_total_bytes: int = 1024 * 1024 * 1024

    def __post_init__(self) -> None:
        if min(self.max_members, self.max_member_bytes, self.max_total_bytes) < 1:
            raise ValueError("archive limits must be positive")


def default_bundle_path() -> Path:
    """The bundle that ships inside the package."""
    return Path(str(resources.files("edge_sentiment") / "default_bundle"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A validated bundle directory."""

    root: Path
    manifest: Manifest
    temp_dir: Path | None = None  # where a .tar was unpacked (the root or its parent)

    def release(self) -> None:
        """Remove the temporary folder of a bundle opened from a ``.tar`` (a no-op for a
        folder). The classifier calls it once its backend holds the model (ONNX Runtime reads
        the file in; LiteRT maps it, which outlives the unlink)."""
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def path_of(self, member: str) -> Path:
        """Resolve a member inside the bundle; refuse anything that leaves it."""
        check_member_path(member, member)
        path = self.root / member
        if path.is_symlink():
            raise UnsafePathError(f"{member}: is a symlink; bundles may not contain links")
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise UnsafePathError(f"{member}: resolves outside the bundle")
        if not path.is_file():
            raise BundleError(f"{member}: listed in the manifest but missing from {self.root}")
        return path

    def verified(self, member: str, sha256: str, size: int | None = None) -> Path:
        """Return the member's path after checking its size and sha256."""
        path = self.path_of(member)
        if size is not None and path.stat().st_size != size:
            raise IntegrityError(f"{member}: size {path.stat().st_size} != manifest {size} bytes")
        actual = sha256_file(path)
        if actual != sha256:
            raise IntegrityError(f"{member}: sha256 mismatch (file {actual[:12]}…, "
                                 f"manifest {sha256[:12]}…); the file is corrupt or tampered")
        return path

    def artifact_path(self, artifact: Artifact) -> Path:
        return self.verified(artifact.file, artifact.sha256, artifact.bytes)

    def tokenizer_path(self) -> Path:
        spec = self.manifest.tokenizer
        return self.verified(spec.file, spec.sha256)

    def summary(self) -> dict[str, object]:
        m = self.manifest
        return {
            "name": m.name, "version": m.version, "path": str(self.root),
            "labels": list(m.labels), "max_seq_length": m.max_seq_length,
            "truncation": m.truncation, "placeholder": m.placeholder,
            "artifacts": [f"{a.runtime}/{a.precision}:{a.file}" for a in m.artifacts],
        }


def read_manifest(root: Path) -> Manifest:
    path = root / MANIFEST_FILE
    if path.is_symlink():
        raise UnsafePathError(f"{MANIFEST_FILE}: is a symlink")
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise BundleError(f"{root}: no {MANIFEST_FILE}; is this a bundle?") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: cannot read: {exc}") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    return parse_manifest(data)


def open_bundle(path: str | os.PathLike[str] | None = None) -> Bundle:
    """Open a bundle directory or ``.tar``; ``None`` is the packaged default.

    A ``.tar`` is checked member by member and unpacked to a private temporary
    directory first.
    """
    root = default_bundle_path() if path is None else Path(path)
    if not root.exists():
        raise BundleError(f"{root}: bundle not found")
    if not root.is_file():
        bundle = Bundle(root=root, manifest=read_manifest(root))
    else:
        tmp = Path(tempfile.mkdtemp(prefix="edge-sentiment-bundle-"))
        try:
            unpacked = extract_tar(root, tmp)
            bundle = Bundle(root=unpacked, manifest=read_manifest(unpacked), temp_dir=tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # a refused archive leaves nothing behind
            raise
        weakref.finalize(bundle, shutil.rmtree, tmp, True)  # whoever forgets release()
    log.debug("opened bundle %s %s at %s", bundle.manifest.name, bundle.manifest.version, root)
    return bundle


def check_tar_member(member: tarfile.TarInfo, max_bytes: int = MAX_MEMBER_BYTES) -> None:
    """Refuse links, devices, absolute paths, ``..`` and oversized members."""
    check_member_path(member.name, f"archive member {member.name!r}")
    if member.issym() or member.islnk():
        raise UnsafePathError(f"archive member {member.name!r}: links are not allowed")
    if not (member.isfile() or member.isdir()):
        raise UnsafePathError(f"archive member {member.name!r}: only files and folders allowed")
    if member.size > max_bytes:
        raise UnsafePathError(f"archive member {member.name!r}: {member.size} bytes is too large")


def extract_tar(archive: Path, dest: Path, limits: ArchiveLimits = ArchiveLimits()) -> Path:
    """Check every member and the totals, then unpack into ``dest``; return the bundle root."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members: list[tarfile.TarInfo] = []
            kinds: dict[str, str] = {}  # normalised path -> "file" or "dir"
            for member in tar:  # headers one by one: a million-member archive stops early
                members.append(member)
                if len(members) > limits.max_members:
                    raise UnsafePathError(f"{archive}: more than {limits.max_members} members")
                check_tar_member(member, limits.max_member_bytes)
                _claim(kinds, member, archive)
            total = sum(m.size for m in members)
            if total > limits.max_total_bytes:
                raise UnsafePathError(f"{archive}: unpacks to {total} bytes, over the limit of "
                                      f"{limits.max_total_bytes}")
            _write_members(tar, members, dest)
    except tarfile.TarError as exc:
        raise BundleError(f"{archive}: not a readable tar archive: {exc}") from exc
    if (dest / MANIFEST_FILE).is_file():
        return dest
    subdirs = [p for p in dest.iterdir() if p.is_dir()]
    if len(subdirs) == 1 and (subdirs[0] / MANIFEST_FILE).is_file():
        return subdirs[0]
    raise BundleError(f"{archive}: no {MANIFEST_FILE} at the top of the archive")


def _claim(kinds: dict[str, str], member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse a member whose path (``./a``, ``a//b`` and ``a`` alike) another member holds, or
    that sits under a file: each would write over another or fail half way."""
    key = posixpath.normpath(member.name)
    kind = "dir" if member.isdir() else "file"
    if key in kinds and (kind == "file" or kinds[key] == "file"):
        raise UnsafePathError(f"{archive}: member {member.name!r} appears twice")
    parts = key.split("/")
    for i in range(1, len(parts)):
        if kinds.get("/".join(parts[:i])) == "file":
            raise UnsafePathError(f"{archive}: member {member.name!r} is under a file")
    kinds[key] = kind


def _write_members(tar: tarfile.TarFile, members: list[tarfile.TarInfo], dest: Path) -> None:
    """Write checked members (plain files and folders, safe relative paths) ourselves, with
    plain modes: ``extractall(filter=...)`` is missing from Python 3.11 before 3.11.4, which
    Debian 12 and Raspberry Pi OS ship (3.11.2)."""
    dest.mkdir(parents=True, exist_ok=True)
    for member in members:
        target = dest / member.name
        if member.isdir():
            target.mkdir(mode=0o755, parents=True, exist_ok=True)
            continue
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        source = tar.extractfile(member)
        if source is None:
            raise UnsafePathError(f"archive member {member.name!r}: no data")
        with source, open(target, "xb") as out:  # "x": a duplicate member is refused
            shutil.copyfileobj(source, out)
        target.chmod(0o644)


def pack_bundle(root: Path, out: Path) -> Path:
    """Write the bundle directory as a deterministic ``.tar`` (sorted, zero mtimes)."""
    bundle = open_bundle(root)
    files = sorted(p for p in bundle.root.rglob("*") if p.is_file())
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            rel = path.relative_to(bundle.root).as_posix()
            info = tarfile.TarInfo(rel)
            data = path.read_bytes()
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return out


def write_manifest(root: Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` (used by convert/ and tests)."""
    path = root / MANIFEST_FILE
    path.write_text(json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


def artifact_for(root: Path, file: str, runtime: str, precision: str,
                 input_shape: tuple[int | None, int | None],
                 lengths: tuple[int, ...] = ()) -> Artifact:
    """Describe a model file already written under ``root``."""
    path = root / file
    return Artifact(runtime=runtime, precision=precision, file=file,
                    sha256=sha256_file(path), bytes=path.stat().st_size,
                    input_shape=input_shape, lengths=lengths)
