"""Typed settings: defaults -> environment (``MDI_*``) -> command line, validated, logged at start.

Each entry point declares one subclass of :class:`BaseAppSettings` and calls :func:`load_settings`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence, TypeVar

from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_CATALOG = REPO_ROOT / "data" / "demo_catalog.csv"
REAL_CATALOG = REPO_ROOT.parent / "shared" / "data" / "amazon.csv"
ARTIFACTS_DIR = REPO_ROOT / "artifacts"

S = TypeVar("S", bound="BaseAppSettings")
log = logging.getLogger(__name__)


class BaseAppSettings(BaseSettings):
    """Common base: env prefix ``MDI_``, unknown env vars ignored, CLI flags in kebab-case."""

    model_config = SettingsConfigDict(
        env_prefix="MDI_",
        extra="ignore",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_exit_on_error=False,
        validate_default=True,
    )

    log_level: str = "INFO"

    def describe(self) -> dict[str, object]:
        """The settings as plain values, for the start-up log line."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.model_dump().items()}


def load_settings(cls: type[S], argv: Sequence[str] | None = None, *, prog: str | None = None,
                  log_start: bool = True) -> S:
    """Build ``cls`` from defaults, env and ``argv`` (``None``: no CLI parsing). Raises ConfigError."""
    try:
        if argv is None:
            settings = cls()
        else:
            settings = cls(_cli_parse_args=list(argv), _cli_prog_name=prog)
    except PydanticValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings for {cls.__name__}: {problems}") from exc
    except SystemExit:  # argparse --help or usage error
        raise
    except Exception as exc:  # pydantic-settings raises SettingsError for bad CLI input
        raise ConfigError(f"invalid settings for {cls.__name__}: {exc}") from exc
    if log_start:
        log.info("settings %s", settings.describe(), extra={"settings_class": cls.__name__})
    return settings


def artifacts_for(catalog: Path, root: Path = ARTIFACTS_DIR) -> Path:
    """Folder holding the artifacts built from ``catalog`` (one sub-folder per catalog file name)."""
    return Path(root) / Path(catalog).stem


class CatalogSettings(BaseAppSettings):
    """Which catalog to serve/train on and where its artifacts live (env ``MDI_CATALOG``, ``MDI_ARTIFACTS``)."""

    catalog: Path = DEMO_CATALOG
    artifacts: Path = ARTIFACTS_DIR

    @property
    def artifact_dir(self) -> Path:
        return artifacts_for(self.catalog, self.artifacts)
