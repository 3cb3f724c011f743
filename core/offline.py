"""Force every Hugging Face library into offline mode: weights come from pip packages or local folders."""
from __future__ import annotations

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
    # llama.cpp/OpenMP threads busy-wait for each other; under CPU contention that collapses decode speed.
    # Only effective when set before torch / llama_cpp are imported (dev.sh exports it too).
    "OMP_WAIT_POLICY": "PASSIVE",
}


def enforce_offline() -> None:
    """Set the offline flags unless the user set them explicitly (call before importing HF libraries)."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
