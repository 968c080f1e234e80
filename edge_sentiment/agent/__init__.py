"""The MQTT fleet agent (``pip install 'edge-sentiment[agent]'``).

``Agent``, ``AgentConfig`` and ``load_config`` are imported on first use, so the CLI (which
imports ``edge_sentiment.agent.cli`` to list its subcommand) does not load pydantic and paho
for every command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import AgentConfig, load_config
    from .core import Agent

__all__ = ["Agent", "AgentConfig", "load_config"]


def __getattr__(name: str) -> Any:
    if name == "Agent":
        from .core import Agent

        return Agent
    if name in ("AgentConfig", "load_config"):
        from . import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
