"""The one exception hierarchy of edge-sentiment.

Every error the package raises on purpose derives from :class:`EdgeSentimentError`.
Each class carries ``exit_code``, which the CLI returns unchanged, so scripts can
tell a bad bundle from a missing runtime without parsing messages.
"""

from __future__ import annotations


class EdgeSentimentError(Exception):
    """Base of every error raised on purpose by edge-sentiment."""

    exit_code = 1


class InputError(EdgeSentimentError, ValueError):
    """A text or argument given to the library is not acceptable."""

    exit_code = 2


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


class UpdateError(EdgeSentimentError):
    """A model update was rejected; ``reason`` is a short machine code."""

    exit_code = 7

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def missing_extra(module: str, extra: str) -> RuntimeUnavailableError:
    """Build the error for an optional dependency that is not installed."""
    return RuntimeUnavailableError(
        f"{module} is not installed; install it with: pip install 'edge-sentiment[{extra}]'"
    )
