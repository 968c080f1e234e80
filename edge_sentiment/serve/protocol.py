"""uvicorn's h11 protocol with a deadline for the request head.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but sets no timer on a
connection that has sent part of a request head, so slow clients (slowloris) hold sockets and
tasks for ever. This subclass closes a connection whose request head is not complete
``header_timeout`` seconds after it opened, or after its previous response. The body has its
own deadline in ``guard.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeadTimeoutH11(H11Protocol):
    header_timeout = 10.0

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def _arm(self) -> None:
        self._head_deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.header_timeout, self._expire)

    def _expire(self) -> None:
        if self.conn.their_state == h11.IDLE and not self.transport.is_closing():
            self.transport.close()  # no complete request head in time

    def connection_lost(self, exc: Exception | None) -> None:
        deadline = getattr(self, "_head_deadline", None)
        if deadline is not None:
            deadline.cancel()
        super().connection_lost(exc)


def protocol_with_timeout(seconds: float) -> type[HeadTimeoutH11]:
    """The protocol class uvicorn should use (``uvicorn.Config(http=...)``)."""
    return type("HeadTimeoutH11", (HeadTimeoutH11,), {"header_timeout": seconds})
