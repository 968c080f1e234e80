"""Redaction of personal data in a text before a device stores it (``capture.py``).

Each pattern below is replaced by its placeholder, in this order (the order matters: an email
holds an ``@`` that would otherwise read as a handle, a URL holds digits):

| name | what it matches | placeholder |
|---|---|---|
| email | ``name@host.tld`` | ``[email]`` |
| url | ``http(s)://...``, ``www.`` hosts, bare ``host.tld/path`` | ``[url]`` |
| handle | ``@name`` (social handles, mentions) | ``@user`` |
| phone | +country and grouped digit runs of 7 to 15 digits (``+1 (555) 010-9999``) | ``[phone]`` |
| digits | longer grouped runs (``4111 1111 1111 1111``), any other run of 5+ digits | ``[number]`` |

It is a filter for accidental personal data in review text, not an anonymiser: a name, an
address in words or a rare story can still identify someone. docs/privacy.md says so.
"""

from __future__ import annotations

import re

PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE), "[email]"),
    ("url", re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|io|co|"
                       r"uk|de|fr|ly|me|info|biz)(?:/\S*)?\b", re.IGNORECASE), "[url]"),
    ("handle", re.compile(r"(?<![\w@])@\w{1,30}"), "@user"),
    ("phone", re.compile(r"(?<![\w+])\+?\d[\d\s().-]{5,26}\d(?!\w)"), "[phone]"),
    ("digits", re.compile(r"\d{5,}"), "[number]"),
)


def _phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group(0))
    if digits > 15:
        return "[number]"
    return "[phone]" if digits >= 7 else match.group(0)


def redact(text: str) -> str:
    """``text`` with every pattern of ``PATTERNS`` replaced by its placeholder."""
    for name, pattern, placeholder in PATTERNS:
        text = pattern.sub(_phone if name == "phone" else placeholder, text)
    return text
