"""Placeholder app (until the agent/UI issue lands): serves /health and the catalog summary on port 8000."""
from __future__ import annotations

import sys

from core.logging import setup_logging
from core.offline import enforce_offline
from core.settings import CatalogSettings, load_settings


class AppSettings(CatalogSettings):
    host: str = "127.0.0.1"
    port: int = 8000


def create_app(settings: AppSettings):
    from fastapi import FastAPI

    from data.catalog import load_catalog

    catalog = load_catalog(settings.catalog)
    app = FastAPI(title="Marketing Data Intelligence")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/catalog")
    def catalog_summary() -> dict:
        return catalog.summary()

    return app


def main(argv: list[str] | None = None) -> None:
    enforce_offline()
    setup_logging()
    settings = load_settings(AppSettings, sys.argv[1:] if argv is None else argv, prog="app.py")
    import uvicorn

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
