"""The release document: one signed description of a bundle for a channel, parsed and built
here (the fleet's ``sign`` builds it, the agent parses and checks it), with its time format."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..bundle import sha256_file
from ..errors import ManifestError, UpdateError, UpdateReason
from ..manifest import parse_semver, semver_key
from .topics import TOPIC_PART

RELEASE_FORMAT = "edge-sentiment-release"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # every time in a signed document: UTC, whole seconds
R = UpdateReason


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Release:
    """The signed part of a release manifest, checked for shape."""

    name: str
    version: str
    channel: str
    bundle_sha256: str
    bundle_size: int
    chunk_size: int
    chunks: tuple[str, ...]
    runtime_min: str
    runtime_max: str
    profiles: tuple[str, ...]
    arches: tuple[str, ...]
    created: str
    expires: str
    bundle_manifest_sha256: str

    def __post_init__(self) -> None:
        for field in (self.version, self.runtime_min, self.runtime_max):
            try:
                parse_semver(field)
            except ManifestError as exc:
                raise ValueError(str(exc)) from exc
        parse_time(self.created)
        parse_time(self.expires)
        expected = -(-self.bundle_size // self.chunk_size) if self.chunk_size > 0 else -1
        if self.chunk_size <= 0 or len(self.chunks) != expected or self.bundle_size <= 0:
            raise ValueError("chunk count does not match bundle_size / chunk_size")
        if not TOPIC_PART.match(self.channel):
            raise ValueError(f"bad channel name {self.channel!r}")
        if not TOPIC_PART.match(self.version):
            raise ValueError(f"bad version {self.version!r}")

    @classmethod
    def from_signed(cls, s: dict[str, Any]) -> Release:
        try:
            if s["format"] != RELEASE_FORMAT or int(s["format_version"]) != 1:
                raise ValueError("unknown release format")
            return cls(
                name=str(s["name"]), version=str(s["version"]), channel=str(s["channel"]),
                bundle_sha256=str(s["bundle_sha256"]), bundle_size=int(s["bundle_size"]),
                chunk_size=int(s["chunk_size"]), chunks=tuple(str(c) for c in s["chunks"]),
                runtime_min=str(s["runtime"]["min"]), runtime_max=str(s["runtime"]["max_exclusive"]),
                profiles=tuple(s["targets"]["profiles"]), arches=tuple(s["targets"]["arches"]),
                created=str(s["created"]), expires=str(s["expires"]),
                bundle_manifest_sha256=str(s["bundle_manifest_sha256"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UpdateError(R.MALFORMED, f"release manifest: {exc}") from exc

    def to_signed(self) -> dict[str, Any]:
        """The document ``from_signed`` reads back (the part the keys sign)."""
        d = asdict(self)
        runtime = {"min": d.pop("runtime_min"), "max_exclusive": d.pop("runtime_max")}
        targets = {"profiles": list(d.pop("profiles")), "arches": list(d.pop("arches"))}
        return {"format": RELEASE_FORMAT, "format_version": 1, **d, "chunks": list(self.chunks),
                "runtime": runtime, "targets": targets}

    def chunk_length(self, index: int) -> int:
        return min(self.chunk_size, self.bundle_size - index * self.chunk_size)


def build_release(*, name: str, version: str, channel: str, bundle: Path, chunk_size: int,
                  bundle_manifest_sha256: str, runtime_max: str, expires_days: float,
                  profiles: list[str] | None = None, arches: list[str] | None = None,
                  now: datetime | None = None) -> Release:
    """A release for the packed bundle file ``bundle`` (read once for its hashes)."""
    when = (now or datetime.now(UTC)).replace(microsecond=0)
    try:
        return Release(
            name=name, version=version, channel=channel, bundle_sha256=sha256_file(bundle),
            bundle_size=bundle.stat().st_size, chunk_size=chunk_size,
            chunks=tuple(chunk_hashes(bundle, chunk_size)), runtime_min="0.0.0",
            runtime_max=runtime_max, profiles=tuple(profiles or ["*"]),
            arches=tuple(arches or ["*"]), created=format_time(when),
            expires=format_time(when + timedelta(days=expires_days)),
            bundle_manifest_sha256=bundle_manifest_sha256)
    except ValueError as exc:
        raise UpdateError(R.MALFORMED, f"release: {exc}") from exc


def chunk_hashes(data_path: Path, chunk_size: int) -> list[str]:
    out = []
    with open(data_path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            out.append(hashlib.sha256(block).hexdigest())
    return out


def check_release(rel: Release, *, installed: str, profile: str, arch: str, max_bytes: int,
                  runtime_version: str, now: datetime | None = None) -> None:
    """Every check that needs no download; raises UpdateError with a reason."""
    when = now or datetime.now(UTC)
    if parse_time(rel.expires) <= when:
        raise UpdateError(R.EXPIRED, f"release {rel.version} expired at {rel.expires}")
    if semver_key(rel.version) <= semver_key(installed):
        raise UpdateError(R.NOT_NEWER, f"release {rel.version} is not above the installed "
                          f"{installed} (anti-rollback)")
    if rel.bundle_size > max_bytes:
        raise UpdateError(R.TOO_LARGE, f"bundle_size {rel.bundle_size} exceeds the configured "
                          f"maximum {max_bytes}")
    if "*" not in rel.profiles and profile not in rel.profiles:
        raise UpdateError(R.INCOMPATIBLE_TARGET, f"profile {profile} not in {list(rel.profiles)}")
    if "*" not in rel.arches and arch not in rel.arches:
        raise UpdateError(R.INCOMPATIBLE_TARGET, f"arch {arch} not in {list(rel.arches)}")
    ours = parse_semver(runtime_version)
    if not parse_semver(rel.runtime_min) <= ours < parse_semver(rel.runtime_max):
        raise UpdateError(R.INCOMPATIBLE_RUNTIME, f"runtime {runtime_version} outside "
                          f"[{rel.runtime_min}, {rel.runtime_max})")
