"""Domain errors. Raised inside the product; translated to HTTP codes / UI messages only at the edge."""
from __future__ import annotations

from typing import Any


class MDIError(Exception):
    """Base class for every error this product raises on purpose."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class ConfigError(MDIError):
    """A setting is missing or invalid."""


class CatalogError(MDIError):
    """The catalog file cannot be read or fails validation (details name columns and rows)."""


class ValidationError(MDIError):
    """A request's input is invalid. `details` carries required_fields / invalid_fields."""

    def __init__(self, message: str, *, required_fields: list[str] | None = None,
                 invalid_fields: dict[str, str] | None = None) -> None:
        super().__init__(message, required_fields=required_fields or [], invalid_fields=invalid_fields or {})
        self.required_fields = required_fields or []
        self.invalid_fields = invalid_fields or {}


class ArtifactError(MDIError):
    """A saved model/index is missing, tampered with or incompatible with this code."""


class ModelUnavailableError(MDIError):
    """A model/index needed to answer is not loaded (warming up or failed to load)."""
