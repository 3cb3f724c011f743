"""Self-describing, pickle-free artifacts.

Every saved model or index is a folder of plain files (JSON, XGBoost JSON, FAISS binary, safetensors...)
plus ``manifest.json``: kind, schema version, creation time, library versions, source-data hash, free-form
metadata (feature list, encodings, metrics) and the sha256 of every file. :func:`load_manifest` checks all
of it and raises :class:`~core.errors.ArtifactError` with a readable reason when anything is off.
"""
from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterable

from core.errors import ArtifactError
from core.hashing import sha256_file

MANIFEST_NAME = "manifest.json"


def library_versions(names: Iterable[str]) -> dict[str, str]:
    """Installed versions of the given distributions ("missing" when not installed)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


@dataclass
class Manifest:
    kind: str
    schema_version: int
    created_at: str
    data_sha256: str
    files: dict[str, str]
    libraries: dict[str, str]
    metadata: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "schema_version": self.schema_version,
            "created_at": self.created_at,
            "data_sha256": self.data_sha256,
            "files": self.files,
            "libraries": self.libraries,
            "metadata": self.metadata,
            "metrics": self.metrics,
        }


def write_manifest(folder: str | Path, *, kind: str, schema_version: int, data_sha256: str,
                   files: Iterable[str], libraries: Iterable[str], metadata: dict[str, Any] | None = None,
                   metrics: dict[str, Any] | None = None) -> Manifest:
    """Hash ``files`` (relative to ``folder``) and write ``manifest.json`` beside them."""
    folder = Path(folder)
    hashes = {}
    for name in files:
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"cannot write manifest: {path} does not exist")
        hashes[name] = sha256_file(path)
    manifest = Manifest(
        kind=kind,
        schema_version=schema_version,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        data_sha256=data_sha256,
        files=hashes,
        libraries=library_versions(libraries),
        metadata=metadata or {},
        metrics=metrics or {},
    )
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n")
    return manifest


def load_manifest(folder: str | Path, *, kind: str, schema_version: int, verify_files: bool = True) -> Manifest:
    """Read and check an artifact folder's manifest. Raises ArtifactError naming what is wrong."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise ArtifactError(f"{kind} artifact not found: {folder} does not exist", path=str(folder))
    if not path.is_file():
        raise ArtifactError(f"{kind} artifact at {folder} has no {MANIFEST_NAME}", path=str(folder))
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{kind} manifest {path} is unreadable: {exc}", path=str(path)) from exc
    try:
        manifest = Manifest(**{k: raw[k] for k in (
            "kind", "schema_version", "created_at", "data_sha256", "files", "libraries")},
            metadata=raw.get("metadata", {}), metrics=raw.get("metrics", {}))
    except (KeyError, TypeError) as exc:
        raise ArtifactError(f"{kind} manifest {path} is missing field {exc}", path=str(path)) from exc
    if manifest.kind != kind:
        raise ArtifactError(f"artifact at {folder} is a {manifest.kind!r}, expected {kind!r}", path=str(folder))
    if manifest.schema_version != schema_version:
        raise ArtifactError(
            f"{kind} artifact at {folder} has schema version {manifest.schema_version}, this code reads "
            f"version {schema_version}; rebuild it", path=str(folder))
    if verify_files:
        for name, expected in manifest.files.items():
            file = folder / name
            if not file.is_file():
                raise ArtifactError(f"{kind} artifact file missing: {file}", path=str(file))
            actual = sha256_file(file)
            if actual != expected:
                raise ArtifactError(
                    f"{kind} artifact file {file} fails its checksum (tampered or truncated); rebuild it",
                    path=str(file))
    return manifest
