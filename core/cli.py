"""The shared shell of every command-line entry point: offline mode, logging, domain errors -> exit code 2."""
from __future__ import annotations

import sys
from typing import Callable

from core.errors import MDIError
from core.logging import setup_logging
from core.offline import enforce_offline


def run_cli(body: Callable[[], int | None]) -> int:
    """Run ``body`` after enforcing offline mode and setting up logging. A domain error prints ``error: ...``
    (no stack trace) and returns 2; otherwise ``body``'s return value (None -> 0)."""
    enforce_offline()
    setup_logging()
    try:
        return body() or 0
    except MDIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
