"""Shared fixtures. Tests that need the real catalog use ``real_catalog_path`` and skip where it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.offline import enforce_offline
from core.settings import DEMO_CATALOG, REAL_CATALOG

enforce_offline()
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def demo_catalog_path() -> Path:
    assert DEMO_CATALOG.is_file(), f"demo catalog missing at {DEMO_CATALOG}: run `python -m data demo`"
    return DEMO_CATALOG


@pytest.fixture(scope="session")
def demo_catalog(demo_catalog_path):
    from data.catalog import load_catalog
    return load_catalog(demo_catalog_path)


@pytest.fixture(scope="session")
def real_catalog_path() -> Path:
    path = Path(os.environ.get("MDI_REAL_CATALOG", REAL_CATALOG))
    if not path.is_file():
        pytest.skip(f"real catalog not found at {path} (set MDI_REAL_CATALOG or place amazon.csv there)")
    return path


@pytest.fixture()
def no_default_adapter(monkeypatch, tmp_path):
    """The LLM factory sees no shipped adapter (the bare base model) and builds fresh models."""
    from llm import factory

    monkeypatch.setattr(factory, "DEFAULT_ADAPTER_DIR", tmp_path / "absent-adapter")
    factory.clear_cache()
    yield
    factory.clear_cache()
