"""Read one TOML file (agent config, firmware profile, build config) with our errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError, EdgeSentimentError


def read_toml(path: Path, error: type[EdgeSentimentError] = ConfigError,
              where: str | None = None) -> dict[str, Any]:
    """Decode ``path``; a missing, unreadable, non-UTF-8 or malformed file raises ``error``
    with a message that starts with ``where`` (default: the path)."""
    where = where or str(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{where}: config file not found") from exc
    except OSError as exc:
        raise error(f"{where}: cannot read: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{where}: not UTF-8 (at byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{where}: invalid TOML: {exc}") from exc
