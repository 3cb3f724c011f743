"""Small ASGI helpers shared by the ops middlewares: JSON error responses, route templates, client keys."""
from __future__ import annotations

import json
from typing import Any, Iterable

from starlette.routing import Match, Mount
from starlette.types import Scope, Send

UNMATCHED = "<unmatched>"


async def send_json(send: Send, status: int, body: dict[str, Any],
                    headers: Iterable[tuple[str, str]] = ()) -> None:
    """Send a complete JSON response (the product's error shape is ``{"error": str, ...}``)."""
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def header(scope: Scope, name: bytes) -> str | None:
    """First value of a request header (``name`` lower-case bytes)."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def client_key(scope: Scope, *, trust_forwarded_for: bool = False) -> str:
    """Who is calling: the first ``X-Forwarded-For`` address behind a trusted proxy, else the peer address."""
    if trust_forwarded_for:
        forwarded = header(scope, b"x-forwarded-for")
        if forwarded:
            first = forwarded.split(",")[0].strip()
            if first:
                return first[:64]
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def route_template(scope: Scope, root_path: str = "") -> str:
    """The matched route's path template after the app ran (``scope["route"]`` is set by Starlette's router;
    mounts extend ``root_path``). Unmatched requests share one label so raw paths never become labels."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return UNMATCHED
    prefix = scope.get("root_path", "")[len(root_path):] if scope.get("root_path", "").startswith(root_path) else ""
    if isinstance(route, Mount):
        return f"{prefix}{path}/{{path}}" if path else f"{prefix}/{{path}}"
    return f"{prefix}{path}" or "/"


def match_route_template(app: Any, scope: Scope) -> str:
    """Template of the route a request *would* hit, for requests answered before routing (429/413)."""
    routes = getattr(getattr(app, "router", None), "routes", None) or getattr(app, "routes", None) or []
    for route in routes:
        try:
            match, _ = route.matches(scope)
        except Exception:  # pragma: no cover - defensive: odd route classes
            continue
        if match is Match.FULL:
            path = getattr(route, "path", "")
            return f"{path}/{{path}}" if isinstance(route, Mount) else (path or "/")
    for route in routes:  # a path that exists with another method
        try:
            match, _ = route.matches(scope)
        except Exception:  # pragma: no cover
            continue
        if match is Match.PARTIAL:
            return getattr(route, "path", UNMATCHED) or "/"
    return UNMATCHED
