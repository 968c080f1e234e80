"""The one exception hierarchy of edge-sentiment.

Every error the package raises on purpose derives from :class:`EdgeSentimentError`.
Each class carries ``exit_code``, which the CLI returns unchanged, so scripts can
tell a bad bundle from a missing runtime without parsing messages.
"""

from __future__ import annotations

from enum import StrEnum


class EdgeSentimentError(Exception):
    """Base of every error raised on purpose by edge-sentiment."""

    exit_code = 1


class InputError(EdgeSentimentError, ValueError):
    """A text or argument given to the library is not acceptable."""

    exit_code = 2


class FeedbackReason(StrEnum):
    """Why ``feedback(id, label)`` was refused."""

    UNKNOWN_ID = "unknown_id"  # never issued here, already labelled, or expired
    BAD_LABEL = "bad_label"  # not one of the bundle's labels


class FeedbackError(InputError):
    """Feedback that cannot be recorded; ``reason`` says why, as a :class:`FeedbackReason`."""

    def __init__(self, reason: FeedbackReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


class ConfigError(EdgeSentimentError):
    """An operator config (agent TOML, CLI flags) is invalid."""

    exit_code = 2


class BundleError(EdgeSentimentError):
    """A model bundle is missing, malformed, unsafe or corrupt."""

    exit_code = 3


class ManifestError(BundleError):
    """A manifest field is missing or invalid; the message names the field."""


class IntegrityError(BundleError):
    """A file's size or sha256 does not match what was declared."""


class UnsafePathError(BundleError):
    """A path would leave the bundle (absolute, ``..``, link or device)."""


class RuntimeUnavailableError(EdgeSentimentError):
    """The requested runtime or provider is not installed or cannot run here."""

    exit_code = 4


class BackendError(EdgeSentimentError):
    """A backend failed to load a model or to run it."""

    exit_code = 5


class SelfTestError(BackendError):
    """A backend loaded but did not reproduce the bundle's golden examples."""


class ProfileError(EdgeSentimentError):
    """A firmware profile is malformed; the message names file and field."""

    exit_code = 6


class UpdateReason(StrEnum):
    """Why an update step was refused or undone; the agent reports the value as ``reason``."""

    MALFORMED = "malformed"  # not a strict JSON document of the expected shape
    BAD_KEY = "bad_key"  # a key file that is not base64 of 32 bytes
    NO_TRUST = "no_trust"  # no trust file configured
    BAD_TRUST = "bad_trust"  # the trust file is unreadable or malformed
    UNKNOWN_KEY = "unknown_key"  # signed only by keys the device does not trust (yet)
    BELOW_THRESHOLD = "below_threshold"  # too few valid trusted signatures
    BAD_SIGNATURE = "bad_signature"  # a trusted key's signature does not verify
    TRUST_ROLLBACK = "trust_rollback"  # a trust document not newer than the current one
    WRONG_CHANNEL = "wrong_channel"
    EXPIRED = "expired"
    NOT_NEWER = "not_newer"  # anti-rollback: not above the highest version ever installed
    TOO_LARGE = "too_large"  # over max_bundle_bytes
    INCOMPATIBLE_TARGET = "incompatible_target"  # profile or arch not in the release's targets
    INCOMPATIBLE_RUNTIME = "incompatible_runtime"  # this package's version outside its range
    SIZE_MISMATCH = "size_mismatch"  # the staged bundle's size is not the signed one
    BUNDLE_HASH_MISMATCH = "bundle_hash_mismatch"
    UNSAFE_ARCHIVE = "unsafe_archive"  # a path, link, member count or size the unpacker refuses
    MANIFEST_MISMATCH = "manifest_mismatch"  # the bundle's manifest is not the signed one
    BAD_BUNDLE = "bad_bundle"  # unpacked, but not a valid bundle
    SELF_TEST_FAILED = "self_test_failed"  # loaded, but missed its golden examples
    LOAD_FAILED = "load_failed"
    ROLLED_BACK = "rolled_back"  # failed after the switch: the previous slot is current again
    DISK_FULL = "disk_full"
    IO_ERROR = "io_error"
    RESUME_FAILED = "resume_failed"  # a staged download could not be resumed at start
    PUBLISH_TIMEOUT = "publish_timeout"  # fleet side: the broker did not acknowledge
    NO_ROLLOUT_ROLE = "no_rollout_role"  # a rollout directive, but the trust names no such role
    ROLLOUT_REPLAY = "rollout_replay"  # a directive not above the last accepted sequence
    NO_DIRECTIVE = "no_directive"  # the trust names a rollout role; no directive yet
    NOT_IN_ROLLOUT = "not_in_rollout"  # not this release, paused, or outside the share
    REVOKED = "revoked"  # the release's version is revoked by the directive
    UNHEALTHY = "unhealthy"  # active, but its health window failed: the previous slot is back

    @property
    def transient(self) -> bool:
        """A verdict that may change without the document changing (a trust rotation on its
        way, a trust file being fixed, a full disk): the same manifest is judged again when it
        comes again. Any other verdict on the same signed bytes is final."""
        return self in _TRANSIENT


_TRANSIENT = frozenset({UpdateReason.UNKNOWN_KEY, UpdateReason.BELOW_THRESHOLD,
                        UpdateReason.NO_TRUST, UpdateReason.BAD_TRUST, UpdateReason.DISK_FULL,
                        UpdateReason.RESUME_FAILED, UpdateReason.NO_DIRECTIVE,
                        UpdateReason.NOT_IN_ROLLOUT, UpdateReason.REVOKED})


class UpdateError(EdgeSentimentError):
    """A model update was rejected; ``reason`` says why, as an :class:`UpdateReason`."""

    exit_code = 7

    def __init__(self, reason: UpdateReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


# The build stage is its own distribution, not an extra of the runtime.
_INSTALL = {"convert": "pip install -e ./convert (edge-sentiment-convert, from a checkout)",
            "track": "pip install -e './convert[track]' (MLflow's tracking client)"}


def missing_extra(module: str, extra: str) -> RuntimeUnavailableError:
    """Build the error for an optional dependency that is not installed."""
    how = _INSTALL.get(extra, f"pip install 'edge-sentiment[{extra}]'")
    return RuntimeUnavailableError(f"{module} is not installed; install it with: {how}")
