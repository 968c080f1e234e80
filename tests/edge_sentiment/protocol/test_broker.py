"""BrokerSettings refuses a malformed URL and one that carries credentials, for every caller."""

from __future__ import annotations

import pytest

from edge_sentiment.errors import ConfigError
from edge_sentiment.protocol import BrokerSettings


@pytest.mark.parametrize("url, why", [
    ("mqtt://alice:hunter2@broker:1883", "credentials in the broker URL are refused"),
    ("mqtts://alice@broker", "credentials in the broker URL are refused"),
    ("http://broker:1883", "must look like mqtt://"),
    ("mqtt://", "must look like mqtt://"),
])
def test_bad_broker_urls_are_refused_without_echoing_them(url: str, why: str) -> None:
    with pytest.raises(ConfigError) as err:
        BrokerSettings(url)
    assert why in str(err.value) and "hunter2" not in str(err.value)


def test_a_plain_url_gives_host_port_and_tls() -> None:
    b = BrokerSettings("mqtts://broker.example")
    assert (b.host, b.port) == ("broker.example", 8883)
    assert BrokerSettings("mqtt://10.0.0.2:1884").port == 1884
