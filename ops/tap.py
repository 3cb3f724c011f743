"""Prediction tap: ASGI middleware that sees the JSON body of each successful discount prediction request and
hands it to a callback (count it, feed the drift window) without any change to the endpoint code."""
from __future__ import annotations

import json
import logging
from typing import Any, Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class PredictionTapMiddleware:
    """For POST requests to ``paths`` (path -> endpoint label) answered 2xx, call
    ``on_prediction(body_dict, label)`` after the response is sent. Bodies are only kept up to
    ``max_bytes`` (the body limit applies before this anyway); callback errors are logged, never raised."""

    def __init__(self, app: ASGIApp, *, paths: Mapping[str, str],
                 on_prediction: Callable[[dict[str, Any], str], None], max_bytes: int = 64 * 1024) -> None:
        self.app, self.paths, self.on_prediction, self.max_bytes = app, dict(paths), on_prediction, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        label = self.paths.get(scope.get("path", "")) if scope["type"] == "http" else None
        if label is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        status = 0

        async def tap_receive() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                size += len(body)
                if size <= self.max_bytes:
                    chunks.append(body)
            return message

        async def tap_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, tap_receive, tap_send)
        if 200 <= status < 300 and size <= self.max_bytes:
            try:
                payload = json.loads(b"".join(chunks))
                if isinstance(payload, dict):
                    self.on_prediction(payload, label)
            except Exception as exc:  # noqa: BLE001 - metrics must never break serving
                log.debug("prediction tap skipped a body: %s", exc)
