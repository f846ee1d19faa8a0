"""The ceiling of the server's own path: a bare ASGI app on uvicorn (httptools, uvloop, as
``mlhandoff serve`` runs) that reads the request body and answers a fixed JSON body.

    python -m uvicorn bare_asgi:app --port P --no-access-log --log-level warning
"""

from __future__ import annotations

from typing import Any

BODY = b'{"predictions":[{"score":0.01,"label":0}]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    more = True
    while more:  # the whole body, as a server that parses it must
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
