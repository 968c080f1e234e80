"""The server's outer layer, as plain ASGI middleware so it runs before any body is read:

- auth: with a token, every path but the public ones needs ``Authorization: Bearer <token>``
  (constant-time compare); a request without it gets 401 before its body is parsed;
- body limit: a ``Content-Length`` over the limit gets 413 at once, and a streamed body that
  grows past it gets 413 as soon as it does, so a 100 MB upload is never held whole (a body
  within the limit is read here and handed on);
- body deadline: a body still incomplete after ``body_timeout`` seconds gets 408;
- every response, errors of any layer included, is counted by path and status.

Errors use the one format of the API: ``{"error": {"code": "<string>", "message": "..."}}``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


async def send_error(send: Send, status: int, code: str, message: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = error_body(code, message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app: ASGIApp, *, token: str | None, max_body: int,
                 public: Callable[[str], bool], count: Callable[[str, int], None],
                 body_timeout: float = 30.0) -> None:
        self.app, self.token, self.max_body = app, token, max_body
        self.public, self.count, self.body_timeout = public, count, body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        status = {"code": 500}

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self._guarded(scope, receive, counted, path)
        finally:
            self.count(path, status["code"])

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        if self.token is not None and not self.public(path):
            given = headers.get("authorization", b"")
            if not hmac.compare_digest(given, f"Bearer {self.token}".encode()):
                await send_error(send, 401, "unauthorized", "missing or wrong bearer token",
                                 [(b"www-authenticate", b"Bearer")])
                return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await send_error(send, 413, "body_too_large",
                             f"the request body is over {self.max_body} bytes")
            return
        if scope.get("method", "GET") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        while True:  # at most max_body bytes are ever held, for at most body_timeout seconds
            left = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(left, 0.001))
            except TimeoutError:
                await send_error(send, 408, "body_timeout",
                                 f"the request body took over {self.body_timeout:g} s")
                return
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await send_error(send, 413, "body_too_large",
                                 f"the request body is over {self.max_body} bytes")
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)
