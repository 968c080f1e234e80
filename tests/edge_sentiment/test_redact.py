"""Redaction before capture: a table of personal-data cases, and text that must survive."""

from __future__ import annotations

import pytest

from edge_sentiment.redact import PATTERNS, redact

PII = [
    ("write to john.doe+shop@gmail.com today", "write to [email] today"),
    ("email: a@b.co", "email: [email]"),
    ("ANNA.K@Example.ORG is my address", "[email] is my address"),
    ("see https://t.co/abc123 now", "see [url] now"),
    ("http://shop.example/refund?id=9 please", "[url] please"),
    ("www.mystore.example/x is down", "[url] is down"),
    ("bit.ly/xyz is spam", "[url] is spam"),
    ("thanks @AmericanAir for nothing", "thanks @user for nothing"),
    ("@united @Delta lost my bag", "@user @user lost my bag"),
    ("call +1 (555) 010-9999 now", "call [phone] now"),
    ("ring 555-010-9999 or 555 0100", "ring [phone] or [phone]"),
    ("+44 20 7946 0958", "[phone]"),
    ("card 4111 1111 1111 1111 was charged", "card [number] was charged"),
    ("order 123456789 never came", "order [phone] never came"),
    ("my zip is 90210", "my zip is [number]"),
    ("account no. 00012345678901234567", "account no. [number]"),
]
KEPT = ["I paid 50 dollars for 2 items in 2019", "rated 4.5 out of 5", "It's 10:30 on 12/05/2024",
        "lol @ that", "five stars, would buy again", "Größe passt, 👍"]


@pytest.mark.parametrize("text, want", PII)
def test_personal_data_is_replaced(text: str, want: str) -> None:
    assert redact(text) == want


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact(text) == text


def test_every_pattern_is_documented_and_exercised() -> None:
    doc = __import__("edge_sentiment.redact", fromlist=["x"]).__doc__ or ""
    placeholders = {placeholder for _, _, placeholder in PATTERNS}
    for name, _, placeholder in PATTERNS:
        assert f"| {name} |" in doc and placeholder in doc
    assert placeholders <= {p for _, want in PII for p in placeholders if p in want}
