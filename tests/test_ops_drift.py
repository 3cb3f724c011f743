"""ops.drift: PSI, category shift, the live sliding-window monitor, metrics/admin exposure and the CLI."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from core.artifacts import write_manifest
from core.errors import ArtifactError
from ops import OpsSettings, install_ops
from ops.drift import (DriftMonitor, InputDistribution, compare, compute_input_distribution, load_reference, main,
                       psi, top_category)


@pytest.fixture(scope="module")
def reference(demo_catalog) -> InputDistribution:
    return compute_input_distribution(demo_catalog.frame)


def test_psi_basics():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    small = psi([0.25] * 4, [0.26, 0.24, 0.25, 0.25])
    big = psi([0.25] * 4, [0.7, 0.1, 0.1, 0.1])
    assert 0 < small < 0.01 < 0.2 < big
    assert np.isfinite(psi([0.5, 0.5, 0.0], [0.0, 0.5, 0.5]))  # empty bins are floored, not infinite


def test_reference_roundtrip_and_other_formats(demo_catalog, reference):
    frame = demo_catalog.frame
    again = InputDistribution.from_dict(json.loads(json.dumps(reference.to_dict())))
    assert again.numeric["rating"].edges == reference.numeric["rating"].edges
    assert set(again.categorical["cat_0"].shares) == set(frame["cat_0"].unique())
    assert sum(reference.numeric["actual_price"].shares) == pytest.approx(1.0)
    # full edges (min..max, bins + 1) with np.histogram counts, as another builder may store them
    values = frame["actual_price"].to_numpy()
    full_edges = np.quantile(values, np.linspace(0, 1, 11))
    counts, _ = np.histogram(values, bins=full_edges)
    alt = InputDistribution.from_dict({"actual_price": {"bin_edges": full_edges.tolist(), "counts": counts.tolist()},
                                       "cat_0": frame["cat_0"].value_counts().to_dict()})
    report = compare(alt, frame)
    assert report.features["actual_price"].psi < 0.01 and not report.significant
    with pytest.raises(ArtifactError):
        InputDistribution.from_dict({"rating": {"edges": [1, 2, 3], "shares": [1.0]}})
    with pytest.raises(ArtifactError):
        InputDistribution.from_dict({"unrelated": {}})


def test_compare_same_data_no_drift_shifted_data_drifts(demo_catalog, reference):
    frame = demo_catalog.frame
    same = compare(reference, frame)
    assert not same.significant
    assert all(f.psi < 0.01 for f in same.features.values())
    shifted = frame.copy()
    shifted["actual_price"] = shifted["actual_price"] * 4  # prices quadrupled
    shifted["cat_0"] = "Toys&Games"  # a category never seen in training
    report = compare(reference, shifted)
    assert report.features["actual_price"].significant and report.features["actual_price"].psi > 0.2
    assert report.features["cat_0"].significant and report.features["cat_0"].total_variation > 0.9
    assert report.features["cat_0"].top_shifts[0]["value"] == "__other__"
    assert not report.features["rating"].significant
    assert "SIGNIFICANT DRIFT in actual_price, cat_0" in report.render()


def test_top_category():
    assert top_category("Electronics|Headphones|InEar") == "Electronics"
    assert top_category("InEar") is None
    assert top_category("InEar", {"InEar": "Electronics"}.get) == "Electronics"
    assert top_category("", None) is None


def _requests(frame, n, rng, price_factor=1.0):
    rows = frame.sample(n, replace=True, random_state=int(rng.integers(1_000_000)))
    return [{"category": r.category, "actual_price": r.actual_price * price_factor, "rating": r.rating,
             "rating_count": r.rating_count} for r in rows.itertuples()]


def test_monitor_window_threshold_warning_and_recovery(demo_catalog, reference, caplog):
    frame = demo_catalog.frame.dropna(subset=["rating", "rating_count"])
    rng = np.random.default_rng(0)
    alerts = []
    monitor = DriftMonitor(reference, window=200, min_samples=100, check_every=50, on_alert=alerts.append)
    assert monitor.status()["status"] == "collecting"
    for args in _requests(frame, 200, rng):
        monitor.record(args)
    status = monitor.status()
    assert status["status"] == "ok", status
    assert status["report"]["features"]["actual_price"]["psi"] < 0.2
    with caplog.at_level(logging.WARNING, logger="ops.drift"):
        for args in _requests(frame, 200, rng, price_factor=5.0):
            monitor.record(args)
    assert alerts == ["actual_price"]  # warned once, not on every check
    assert any("input drift on actual_price" in r.getMessage() for r in caplog.records)
    assert monitor.status()["status"] == "drift"
    assert monitor.gauges()[("actual_price", "significant")] == 1.0
    for args in _requests(frame, 200, rng):  # the window slides back to normal traffic
        monitor.record(args)
    assert monitor.status()["status"] == "ok"
    assert ("actual_price", "psi") in monitor.gauges()


def test_monitor_lazy_reference_reports_reason(tmp_path):
    monitor = DriftMonitor(lambda: load_reference(tmp_path / "missing"), min_samples=1)
    monitor.record({"category": "A|B", "actual_price": 10, "rating": 4, "rating_count": 3})
    status = monitor.status()
    assert status["status"] == "no_reference" and "no discount model manifest" in status["reason"]


def _model_dir(tmp_path, catalog, with_distribution=True):
    folder = tmp_path / "discount_model"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    metadata = {"input_distribution": compute_input_distribution(catalog.frame).to_dict()} if with_distribution else {}
    write_manifest(folder, kind="discount_model", schema_version=1, data_sha256=catalog.sha256,
                   files=["model.json"], libraries=[], metadata=metadata)
    return folder


def test_install_ops_exposes_drift_metrics_and_admin(tmp_path, demo_catalog):
    model_dir = _model_dir(tmp_path, demo_catalog)
    app = FastAPI()
    install_ops(app, OpsSettings(configure_logging=False, rate_limit_enabled=False, drift_model_dir=model_dir,
                                 drift_min_samples=50, drift_check_every=10))

    @app.post("/predict_discount")
    def predict(body: dict) -> dict:  # no ops call here: the prediction tap middleware records 2xx bodies
        if body.get("rating", 0) > 5:
            raise HTTPException(400, "bad rating")
        return {"predicted_discount_percentage": 10.0}

    client = TestClient(app)
    frame = demo_catalog.frame.dropna(subset=["rating", "rating_count"])
    for args in _requests(frame, 60, np.random.default_rng(1), price_factor=6.0):
        assert client.post("/predict_discount", json=args).status_code == 200
    assert client.post("/predict_discount", json={**args, "rating": 9}).status_code == 400  # not recorded
    body = client.get("/admin/drift").json()
    assert body["status"] == "drift" and "actual_price" in body["report"]["drifted_features"]
    text = client.get("/metrics").text
    assert 'mdi_input_drift{feature="actual_price",statistic="psi"}' in text
    assert 'mdi_drift_alerts_total{feature="actual_price"} 1.0' in text
    assert 'mdi_predictions_total{endpoint="predict_discount"} 60.0' in text
    assert "/admin/drift" in client.get("/openapi.json").json()["paths"]


def test_cli_demo_vs_itself_no_drift(tmp_path, demo_catalog, demo_catalog_path, capsys):
    model_dir = _model_dir(tmp_path, demo_catalog)
    assert main(["--catalog", str(demo_catalog_path), "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "no significant drift" in out and "actual_price" in out


def test_cli_errors_are_readable(tmp_path, demo_catalog, demo_catalog_path, capsys):
    no_dist = _model_dir(tmp_path, demo_catalog, with_distribution=False)
    assert main(["--catalog", str(demo_catalog_path), "--model", str(no_dist)]) == 2
    assert "no metadata.input_distribution" in capsys.readouterr().err
    assert main(["--catalog", str(tmp_path / "nope.csv"), "--reference", str(demo_catalog_path)]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.real_data
def test_cli_real_vs_demo_shows_drift(tmp_path, demo_catalog, real_catalog_path, capsys):
    model_dir = _model_dir(tmp_path, demo_catalog)
    assert main(["--catalog", str(real_catalog_path), "--model", str(model_dir), "--json-output"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["significant"] and report["drifted_features"]
    assert report["n"] == 1465


def test_reads_the_discount_models_own_distribution_format(demo_catalog, reference):
    artifact = pytest.importorskip("tools.discount.artifact", reason="discount model package not in this tree")
    raw = artifact.input_distribution(demo_catalog.frame)
    theirs = InputDistribution.from_dict(json.loads(json.dumps(raw)))
    assert theirs.numeric["rating"].right_closed
    assert theirs.numeric["rating"].edges == reference.numeric["rating"].edges
    assert theirs.numeric["rating"].shares == pytest.approx(reference.numeric["rating"].shares)
    same = compare(theirs, demo_catalog.frame)
    assert all(f.psi < 1e-6 for f in same.features.values()), same.to_dict()
