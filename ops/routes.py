"""The endpoints install_ops adds: ``GET /metrics``, ``GET /admin/drift`` and the LLM gate's 503 handler."""
from __future__ import annotations

import hmac

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ops.drift import DriftMonitor
from ops.limits import GateFullError
from ops.metrics import OpsMetrics
from ops.settings import OpsSettings


def add_routes(app: FastAPI, settings: OpsSettings, metrics: OpsMetrics, drift: DriftMonitor | None) -> None:
    """Register the ops endpoints and the :class:`GateFullError` -> 503 translation on ``app``."""

    @app.get(settings.metrics_path, include_in_schema=False)
    def metrics_endpoint() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    if drift is not None:
        @app.get(settings.admin_path, tags=["admin"], summary="Input drift of the discount model",
                 responses={401: {"description": "admin token missing or wrong"}})
        def admin_drift(request: Request) -> JSONResponse:
            if settings.admin_token:
                given = request.headers.get("authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {settings.admin_token}".encode()):
                    return JSONResponse({"error": "admin token missing or wrong"}, status_code=401,
                                        headers={"WWW-Authenticate": "Bearer"})
            return JSONResponse(drift.status())

    @app.exception_handler(GateFullError)
    async def gate_full(_request: Request, exc: GateFullError) -> JSONResponse:
        return JSONResponse({"error": exc.message, "retry_after_s": exc.retry_after_s}, status_code=503,
                            headers={"Retry-After": str(exc.retry_after_s)})
