"""Build (or reuse) every artifact the app needs for a catalog: ``python -m scripts.build_artifacts``.

Each builder is ``ensure(catalog: Path, out_dir: Path, force: bool) -> str``: it checks the artifact's
manifest (schema version, catalog sha256, code version) and rebuilds only when something changed, returning
a one-line status. Settings: ``--catalog`` / ``MDI_CATALOG`` (default: the demo catalog), ``--artifacts``,
``--force``.
"""
from __future__ import annotations

import importlib
import logging
import sys
import time

from core.cli import run_cli
from core.settings import CatalogSettings, load_settings

log = logging.getLogger("build_artifacts")

# (label, "module:function")
BUILDERS: list[tuple[str, str]] = [
    ("discount model", "tools.discount.build:ensure_discount_model"),
    ("retrieval index", "tools.retrieval.build:ensure_index"),
]


class BuildSettings(CatalogSettings):
    force: bool = False


def build_all(settings: BuildSettings) -> list[str]:
    out_dir = settings.artifact_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    statuses = []
    for label, target in BUILDERS:
        module_name, func_name = target.split(":")
        ensure = getattr(importlib.import_module(module_name), func_name)
        start = time.perf_counter()
        status = ensure(settings.catalog, out_dir, settings.force)
        statuses.append(f"{label}: {status} ({time.perf_counter() - start:.1f}s)")
        log.info(statuses[-1])
    return statuses


def main(argv: list[str] | None = None) -> int:
    def body() -> None:
        build_all(load_settings(BuildSettings, sys.argv[1:] if argv is None else argv, prog="build_artifacts"))

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
