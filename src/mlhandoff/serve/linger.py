"""A client can read an early answer (413, 401, 415, ...) to a request whose body it is still
sending.

Answering before the body has arrived and then closing the connection resets it while the
client is still writing: its unread bytes make the kernel send RST, and a Python client
(``urllib``, ``requests``) reports "connection reset by peer" instead of the 413. As nginx's
lingering close does, the rest of the body is read and thrown away before the answer goes out,
bounded in bytes and in time; past either bound the answer says ``Connection: close`` and the
server closes (a body that large is not worth reading to deliver a 413).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: At most this many bytes of an unread body are read and discarded before an early answer.
LINGER_MAX_BYTES = 64 * 1024 * 1024
#: ... and for at most this long.
LINGER_S = 5.0


class LingeringBody:
    """ASGI middleware: when an answer starts while the request's body is still arriving, the
    rest of the body (up to LINGER_MAX_BYTES, within LINGER_S) is discarded first."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        done = False  # the whole body has been received (or the client left)

        async def tracked_receive() -> Message:
            nonlocal done
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                done = True
            return message

        async def lingering_send(message: Message) -> None:
            nonlocal done
            if message["type"] == "http.response.start" and not done:
                done = True
                # A 408 went to a body too slow to wait for: waiting again would not help.
                slow = message["status"] == 408
                if _has_body(scope) and (slow or not await _discard(scope, receive)):
                    headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, tracked_receive, lingering_send)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _has_body(scope: Scope) -> bool:
    """Whether the request came with a body that a client may still be sending. A client that
    sent ``Expect: 100-continue`` sends nothing until told to: it reads the answer as it is."""
    if (_header(scope, b"expect") or b"").lower() == b"100-continue":
        return False
    length = _header(scope, b"content-length")
    return _header(scope, b"transfer-encoding") is not None or (
        length is not None and length.strip() not in (b"", b"0")
    )


async def _discard(scope: Scope, receive: Receive) -> bool:
    """Reads and drops the rest of the body; True when it all arrived within the bounds."""
    length = _header(scope, b"content-length")
    if length is not None and length.isdigit() and int(length) > LINGER_MAX_BYTES:
        return False  # declared too large to be worth reading
    read = 0
    try:
        async with asyncio.timeout(LINGER_S):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return True  # nobody left to reset
                read += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return True
                if read > LINGER_MAX_BYTES:
                    return False
    except TimeoutError:
        return False
