"""`python app.py` as a real process: serves /health at once while components load in the background, and
reports missing artifacts as 503 with the reason (slow: starts a server process)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from core.settings import REPO_ROOT
from serving.server import free_port, stop_process

pytestmark = pytest.mark.slow


def test_app_process_starts_fast_and_reports_missing_artifacts(tmp_path, demo_catalog_path):
    port = free_port()
    env = {**os.environ, "MDI_LOG_LEVEL": "WARNING", "MDI_LLM_ADAPTER": "none"}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--catalog", str(demo_catalog_path),
                             "--artifacts", str(tmp_path / "nothing-built-here"), "--no-ui"],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() - started < 60, "app did not start serving within 60 s"
            time.sleep(0.2)
        deadline = time.monotonic() + 120
        while True:  # discount + index fail fast; wait until loading has finished for them
            ready = httpx.get(base + "/ready", timeout=5)
            body = ready.json()
            if body["components"]["discount"]["status"] == "failed" and \
                    body["components"]["search"]["status"] == "failed":
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.5)
        assert ready.status_code == 503 and ready.headers["Retry-After"] == "60"
        assert "build_artifacts" in body["error"] and "nothing-built-here" in body["error"]
        r = httpx.post(base + "/predict_discount", json={"category": "SmartWatches", "actual_price": 2499,
                                                         "rating": 4.1, "rating_count": 3200}, timeout=5)
        assert r.status_code == 503 and "discount model is unavailable" in r.json()["error"]
        r = httpx.post(base + "/answer_question", json={"question": "kettles"}, timeout=5)
        assert r.status_code == 503
        assert httpx.post(base + "/predict_discount", content=b"nope", timeout=5).status_code == 400
        assert httpx.get(base + "/docs", timeout=5).status_code == 200
    finally:
        stop_process(proc)
