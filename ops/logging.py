"""Request context: a request id on every log line of a request, one access-log line per request, and the
HTTP metrics (count, latency, errors by route template).

Builds on :mod:`core.logging` (``setup_logging(json_logs=True)`` and ``request_id_var``). The access line
holds method, route template, path, status, duration and client — never bodies, prompts, query strings or
headers (they can carry secrets); those belong at DEBUG in the code that owns them, if anywhere.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logging import request_id_var
from ops.asgi import UNMATCHED, header, match_route_template, route_template

access_log = logging.getLogger("mdi.access")
REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def incoming_request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is a safe token (no log injection), else a fresh id."""
    value = header(scope, b"x-request-id")
    return value if value and _VALID_ID.match(value) else new_request_id()


class RequestContextMiddleware:
    """Outermost ASGI middleware: sets ``request_id_var``, echoes ``X-Request-ID``, times the request, feeds
    ``observe(method, route, status, seconds)`` and logs one ``mdi.access`` line when the response ends."""

    def __init__(self, app: ASGIApp, *, observe: Callable[[str, str, int, float], None] | None = None,
                 in_progress: Callable[[int], None] | None = None, access_log_enabled: bool = True,
                 skip_log_paths: tuple[str, ...] = ("/metrics", "/health"), route_app: Any = None) -> None:
        self.app = app
        self.route_app = route_app
        self.observe = observe
        self.in_progress = in_progress
        self.access_log_enabled = access_log_enabled
        self.skip_log_paths = skip_log_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_request_id(scope)
        token = request_id_var.set(rid)
        root_path = scope.get("root_path", "")
        start = time.perf_counter()
        status = 500
        rid_header = (REQUEST_ID_HEADER.lower().encode(), rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [h for h in message.get("headers", []) if h[0].lower() != rid_header[0]]
                message = {**message, "headers": [*headers, rid_header]}
            await send(message)

        if self.in_progress:
            self.in_progress(1)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # the app's own handler logs the traceback; name it here with the request id
            status = 500
            access_log.error("unhandled %s while serving %s %s", type(exc).__name__, scope.get("method"),
                             scope.get("path"))
            raise
        finally:
            seconds = time.perf_counter() - start
            if self.in_progress:
                self.in_progress(-1)
            route = route_template(scope, root_path)
            if route == UNMATCHED and self.route_app is not None:  # answered before routing (429, 413)
                route = match_route_template(self.route_app, scope)
            if self.observe is not None:
                self.observe(scope.get("method", ""), route, status, seconds)
            if self.access_log_enabled and scope.get("path") not in self.skip_log_paths:
                client = scope.get("client")
                level = logging.WARNING if status >= 500 else logging.INFO
                access_log.log(level, "%s %s %d %.1fms", scope.get("method"), route, status, seconds * 1000,
                               extra={"method": scope.get("method"), "route": route, "path": scope.get("path"),
                                      "status": status, "duration_ms": round(seconds * 1000, 2),
                                      "client": client[0] if client else None})
            request_id_var.reset(token)
