"""The app: one process serving the REST API, the Gradio UI (at ``/ui``), its API and an MCP server.

    python app.py                                  # http://127.0.0.1:8000  (UI: /ui, REST docs: /docs)
    python app.py --catalog ../shared/data/amazon.csv --port 8080
    MDI_HOST=0.0.0.0 MDI_PORT=8000 python app.py   # listen on all interfaces (only when you mean it)

Settings (defaults -> env ``MDI_*`` -> CLI): catalog/artifacts (``CatalogSettings``), the LLM (``MDI_LLM_*``,
see ``llm.settings``), agent bounds (``MDI_AGENT_*``), host, port, UI and MCP switches. Heavy components load
in a background thread; until then the endpoints that need them answer 503 + ``Retry-After``.
Artifacts are built by ``python -m scripts.build_artifacts`` (``./dev.sh app`` runs it first); when they are
missing, /ready and the affected endpoints say so.
"""
from __future__ import annotations

import logging
import sys
from contextlib import asynccontextmanager
from typing import Any

from agent.graph import AgentSettings
from core.logging import setup_logging
from core.offline import enforce_offline
from core.settings import CatalogSettings, load_settings
from llm.settings import LLMSettings

log = logging.getLogger("app")

UI_PATH = "/ui"


class AppSettings(CatalogSettings, LLMSettings, AgentSettings):
    """Everything the app process needs (env ``MDI_*``, CLI ``--kebab-case``)."""

    host: str = "127.0.0.1"
    port: int = 8000
    ui: bool = True            # mount the Gradio UI at /ui
    mcp_server: bool = True    # expose the Gradio API endpoints as MCP tools (/ui/gradio_api/mcp/)
    json_logs: bool = False


def create_app(settings: AppSettings | None = None, *, runtime: Any = None, components: dict[str, Any] | None = None,
               loaders: dict[str, Any] | None = None, ui: bool | None = None, ops_settings: Any = None):
    """Build the ASGI app. ``runtime`` (a :class:`serving.runtime.Runtime`) or ``components``/``loaders``
    inject fakes; otherwise the real components load in the background when the app starts.

    Ops hook (hardening): wrap or extend the returned app — middlewares via ``app.add_middleware`` (they see
    the REST routes and the mounted UI), extra routes (``/metrics``) via ``app.add_api_route``; agent counters
    are at ``app.state.runtime.metrics`` (``AgentMetrics.add_listener``) and readiness at
    ``app.state.runtime.readiness()``.
    """
    from serving.api import create_api
    from serving.runtime import Runtime

    settings = settings or AppSettings()
    if runtime is None:
        runtime = Runtime(settings, components=components, loaders=loaders)

    @asynccontextmanager
    async def lifespan(_app):
        if not runtime.is_ready() and getattr(runtime, "_thread", None) is None:
            runtime.start(background=True)
        yield

    app = create_api(runtime, max_question_chars=settings.agent_max_input_chars, lifespan=lifespan)
    app.state.settings = settings
    ops = None
    if ops_settings is not False:  # hardening: metrics, request ids, limits, drift (docs/operations.md)
        from ops import OpsSettings, install_ops

        ops_settings = ops_settings or load_settings(OpsSettings, None, log_start=False)
        if ops_settings.drift_model_dir is None:
            ops_settings.drift_model_dir = settings.artifact_dir / "discount_model"
        ops = install_ops(app, ops_settings, versions=lambda: runtime.readiness()["versions"])
        runtime.metrics.add_listener(ops.metrics.agent_listener)
    app.state.ops = ops
    if settings.ui if ui is None else ui:
        import gradio as gr
        from fastapi.responses import RedirectResponse

        from serving.ui import build_ui

        demo = build_ui(runtime)
        demo.queue(**(ops.gradio_queue_kwargs() if ops else {"default_concurrency_limit": 2, "max_size": 64}))

        @app.get("/", include_in_schema=False)
        async def root() -> RedirectResponse:
            return RedirectResponse(url=f"{UI_PATH}/")

        app = gr.mount_gradio_app(app, demo, path=UI_PATH, mcp_server=settings.mcp_server,
                                  footer_links=["api", "gradio"])
        app.state.gradio = demo
    return app


def main(argv: list[str] | None = None) -> None:
    enforce_offline()
    settings = load_settings(AppSettings, sys.argv[1:] if argv is None else argv, prog="app.py", log_start=False)
    setup_logging(settings.log_level, json_logs=settings.json_logs)
    log.info("settings %s", settings.describe())
    import uvicorn

    app = create_app(settings)
    log.info("serving on http://%s:%d (UI %s/, REST docs /docs)", settings.host, settings.port, UI_PATH)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower())


if __name__ == "__main__":
    main()
