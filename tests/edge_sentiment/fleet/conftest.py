"""The agent tests' broker helpers, for the fleet tests that drive a real agent."""

from ..agent.conftest import run_agent, watcher  # noqa: F401  (fixtures)
