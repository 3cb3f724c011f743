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
}


def enforce_offline() -> None:
    """Set the offline flags unless the user set them explicitly (call before importing HF libraries)."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
