"""The update and fleet protocol, shared by the agent, the fleet commands and the exporter:
topics, device messages, the signed release and trust documents (parsed and built here),
canonical serialization, broker settings, and the I/O-free verification state machine.

Nothing here touches a broker or a file except ``make_client`` (paho, lazily) and the key
and bundle readers named as such."""

from .broker import BrokerSettings, broker_address, connect, make_client
from .release import (
    RELEASE_FORMAT,
    TIME_FORMAT,
    Release,
    build_release,
    check_release,
    format_time,
    parse_time,
)
from .signing import (
    Trust,
    canonical,
    parse_trust,
    rotate_trust,
    sign_document,
    strict_loads,
    verify_signatures,
)
from .topics import DEFAULT_PREFIX, DeviceTopic, Topics, device_of
from .verify import Chunk, DeviceFacts, UpdateVerifier

__all__ = [
    "DEFAULT_PREFIX", "RELEASE_FORMAT", "TIME_FORMAT", "BrokerSettings", "Chunk", "DeviceFacts",
    "DeviceTopic", "Release", "Topics", "Trust", "UpdateVerifier", "broker_address",
    "build_release", "canonical", "check_release", "connect", "device_of", "format_time", "make_client",
    "parse_time", "parse_trust", "rotate_trust", "sign_document", "strict_loads",
    "verify_signatures",
]
