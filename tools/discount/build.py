"""Build-or-reuse entry point used by ``scripts.build_artifacts``: :func:`ensure_discount_model`."""
from __future__ import annotations

import logging
from pathlib import Path

from core.artifacts import load_manifest
from core.errors import ArtifactError
from core.hashing import sha256_file
from tools.discount.artifact import FOLDER_NAME, KIND, SCHEMA_VERSION, code_version, save_artifact
from tools.discount.train import TrainConfig, train

log = logging.getLogger(__name__)
# Search used by ensure_discount_model (the app's build step); the CLI's `train` can run a bigger one.
BUILD_CONFIG = TrainConfig()


def stale_reason(folder: Path, data_sha256: str) -> str | None:
    """Why the artifact in ``folder`` must be rebuilt for this data and code; None when it is current."""
    try:
        manifest = load_manifest(folder, kind=KIND, schema_version=SCHEMA_VERSION, verify_files=True)
    except ArtifactError as exc:
        return exc.message
    if manifest.data_sha256 != data_sha256:
        return "the catalog changed"
    if manifest.metadata.get("code_version") != code_version():
        return "the model code changed"
    return None


def train_and_save(catalog: Path, out_dir: Path, config: TrainConfig | None = None) -> tuple[Path, dict]:
    """Load ``catalog`` (raw schema CSV), train with ``config`` and write ``<out_dir>/discount_model``."""
    from data.catalog import load_catalog

    cat = load_catalog(catalog)
    result = train(cat.frame, config or TrainConfig())
    folder = save_artifact(out_dir, result.model, metrics=result.metrics, data_sha256=cat.sha256,
                           data_source=Path(catalog).name, training_frame=cat.frame, params=result.params,
                           search=result.search)
    return folder, load_manifest(folder, kind=KIND, schema_version=SCHEMA_VERSION, verify_files=False).metrics


def ensure_discount_model(catalog: Path, out_dir: Path, force: bool = False) -> str:
    """Reuse ``<out_dir>/discount_model`` when its data sha256, schema version and code version match the
    catalog and this code; otherwise train (default small search) and save. Returns a one-line status."""
    catalog, out_dir = Path(catalog), Path(out_dir)
    folder = out_dir / FOLDER_NAME
    reason = "forced" if force else stale_reason(folder, sha256_file(catalog) if catalog.is_file() else "")
    if reason is None:
        return f"up to date ({folder})"
    log.info("training discount model: %s", reason)
    folder, metrics = train_and_save(catalog, out_dir, BUILD_CONFIG)
    cv = metrics["cv"]
    return (f"trained ({reason}): dev-split CV MAE {cv['mae']:.2f} R2 {cv['r2']:.3f}, held-out MAE "
            f"{metrics['test']['mae']:.2f} (median baseline {metrics['test_baseline_median']['mae']:.2f}) -> {folder}")
