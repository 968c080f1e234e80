"""The MQTT fleet agent (``pip install 'edge-sentiment[agent]'``)."""

from .config import AgentConfig, load_config
from .core import Agent

__all__ = ["Agent", "AgentConfig", "load_config"]
