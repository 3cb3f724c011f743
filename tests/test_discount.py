"""Discount model: features, grouped validation, artifact, service, explanations, request validation, CLI."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import ArtifactError, ValidationError
from tools.discount import artifact as artifact_mod
from tools.discount.artifact import bin_shares, input_distribution, load_artifact, save_artifact
from tools.discount.build import ensure_discount_model, stale_reason
from tools.discount.cli import main as cli_main
from tools.discount.features import EncoderConfig, FeatureEncoder, request_frame
from tools.discount.service import load_discount_service, parse_discount_request
from tools.discount.train import TrainConfig, grouped_folds, holdout_split, train
from tools.specs import ExplainDiscountArgs, PredictDiscountArgs

TINY = TrainConfig(n_iter=2, search="tiny", folds=3, progress=False, seed=7)
QUICK = TrainConfig(n_iter=1, search="tiny", folds=2, progress=False, seed=7, cv_all_rows=False)


@pytest.fixture(scope="module")
def demo_frame(demo_catalog) -> pd.DataFrame:
    return demo_catalog.frame


@pytest.fixture(scope="module")
def trained(demo_frame):
    return train(demo_frame, TINY)


@pytest.fixture(scope="module")
def model_dir(trained, demo_catalog, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("artifacts")
    return save_artifact(out, trained.model, metrics=trained.metrics, data_sha256=demo_catalog.sha256,
                         data_source="demo_catalog.csv", training_frame=demo_catalog.frame, params=trained.params,
                         search=trained.search)


@pytest.fixture(scope="module")
def service(model_dir):
    return load_discount_service(model_dir)


def _request(**overrides) -> dict:
    base = {"category": "SmartWatches", "actual_price": 4999, "rating": 4.1, "rating_count": 1520,
            "product_name": "Noise ColorFit Smart Watch with Bluetooth Calling"}
    base.update(overrides)
    return base


# ---------------------------------------------------------------------------------------------- validation scheme

def test_grouped_folds_and_holdout_keep_products_together(demo_frame):
    assert demo_frame["product_id"].duplicated().any(), "demo catalog should contain duplicate listings"
    ids = demo_frame["product_id"].to_numpy()
    for tr, va in grouped_folds(demo_frame, 5, seed=3):
        assert not set(ids[tr]) & set(ids[va])
    dev, test = holdout_split(demo_frame, 0.2, seed=3)
    assert not set(ids[dev]) & set(ids[test])
    assert len(dev) + len(test) == len(demo_frame)


def test_training_reports_cv_test_and_baselines(trained):
    m = trained.metrics
    for key in ("cv", "cv_baseline_median", "test", "test_baseline_median", "cv_all_rows",
                "cv_all_rows_baseline_median"):
        assert {"mae", "rmse", "r2"} <= set(m[key]), key
        assert all(math.isfinite(m[key][k]) for k in ("mae", "rmse", "r2"))
    assert m["cv"]["folds"] == 3
    assert m["search"]["n_iter"] == 2 and len(trained.search) == 2
    # the demo discounts depend on category/brand/price: the model must beat the median predictor
    assert m["cv"]["mae"] < m["cv_baseline_median"]["mae"]
    assert m["test"]["mae"] < m["test_baseline_median"]["mae"]


def test_too_few_products_is_a_validation_error(demo_frame):
    small = demo_frame[demo_frame["product_id"].isin(demo_frame["product_id"].unique()[:5])]
    with pytest.raises(ValidationError) as info:
        train(small, TINY)
    assert "discount_percentage" in info.value.invalid_fields


# ---------------------------------------------------------------------------------------------- features

def test_no_discounted_price_feature(demo_frame):
    y = demo_frame["discount_percentage"].to_numpy()
    enc, matrix = FeatureEncoder.fit(demo_frame, y, EncoderConfig(svd_components=4))
    assert not any("discounted" in n for n in enc.feature_names)
    assert matrix.shape == (len(demo_frame), len(enc.feature_names))
    scrambled = demo_frame.copy()
    scrambled["discounted_price"] = np.random.default_rng(0).permutation(scrambled["discounted_price"].to_numpy())
    np.testing.assert_array_equal(enc.transform(demo_frame), enc.transform(scrambled))
    np.testing.assert_array_equal(enc.transform(demo_frame),
                                  enc.transform(demo_frame.drop(columns=["discounted_price", "discount_percentage"])))


def test_encoder_sees_only_its_training_fold(demo_frame):
    leaves = demo_frame["leaf_category"].unique()
    held_leaf = leaves[0]
    train_rows = demo_frame[demo_frame["leaf_category"] != held_leaf].copy()
    # a token that only the held-out rows carry must not reach the vocabulary
    held = demo_frame[demo_frame["leaf_category"] == held_leaf].copy()
    held["product_name"] = held["product_name"] + " zzqxuniquetoken"
    enc, _ = FeatureEncoder.fit(train_rows, train_rows["discount_percentage"].to_numpy(), EncoderConfig())
    assert held_leaf not in enc.target_maps["leaf_category"]
    assert held_leaf not in enc.leaf_lookup
    assert not any("zzqxuniquetoken" in t for t in enc.vectorizers["product_name"].vocabulary)
    assert enc.prior == pytest.approx(train_rows["discount_percentage"].mean())


def test_training_rows_get_out_of_fold_target_encodings(demo_frame):
    y = demo_frame["discount_percentage"].to_numpy()
    enc, matrix = FeatureEncoder.fit(demo_frame, y, EncoderConfig())
    te_brand = enc.feature_names.index("te_brand")
    in_fold = enc.transform(demo_frame)[:, te_brand]
    # out-of-fold values differ from the full-fit encoding (which would leak each row's own target)
    assert not np.allclose(matrix[:, te_brand], in_fold)


def test_encoder_json_round_trip(demo_frame):
    y = demo_frame["discount_percentage"].to_numpy()
    enc, _ = FeatureEncoder.fit(demo_frame, y, EncoderConfig(svd_components=3))
    again = FeatureEncoder.from_json(json.loads(json.dumps(enc.to_json())))
    np.testing.assert_allclose(enc.transform(demo_frame), again.transform(demo_frame))


def test_input_distribution_shares(demo_frame):
    dist = input_distribution(demo_frame)
    for col in ("actual_price", "rating", "rating_count"):
        assert 1 <= len(dist[col]["edges"]) <= 9
        assert len(dist[col]["shares"]) == len(dist[col]["edges"]) + 1
        assert sum(dist[col]["shares"]) == pytest.approx(1.0)
    assert sum(dist["cat_0"]["shares"].values()) == pytest.approx(1.0)
    assert set(dist["cat_0"]["shares"]) == set(demo_frame["cat_0"])
    assert bin_shares(np.array([1, 2, 3, 4, np.nan]), [2.0, 3.0]) == [0.5, 0.25, 0.25]


# ---------------------------------------------------------------------------------------------- artifact

def test_artifact_round_trip(model_dir, trained, demo_frame, service):
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        ["model.json", "features.json", "metrics.json", "card.md", "manifest.json"])
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["kind"] == "discount_model" and manifest["schema_version"] == artifact_mod.SCHEMA_VERSION
    meta = manifest["metadata"]
    assert meta["code_version"] == artifact_mod.code_version()
    assert meta["feature_names"] and "input_distribution" in meta
    assert manifest["metrics"]["cv"]["mae"] == pytest.approx(trained.metrics["cv"]["mae"])
    assert "xgboost" in manifest["libraries"]
    loaded = load_artifact(model_dir)
    np.testing.assert_allclose(loaded.model.predict(demo_frame), trained.model.predict(demo_frame), rtol=1e-6)
    assert service.version.startswith("discount-xgb-")
    assert service.card["test"]["mae"] == pytest.approx(trained.metrics["test"]["mae"])
    assert "| held-out test |" in service.card["markdown"]


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    import shutil
    dst = tmp_path / "discount_model"
    shutil.copytree(model_dir, dst)
    return dst


def test_tampered_model_is_rejected(model_dir, tmp_path):
    copy = _copy(model_dir, tmp_path)
    data = bytearray((copy / "model.json").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "model.json").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum"):
        load_discount_service(copy)


def test_missing_artifact_and_file_are_rejected(model_dir, tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        load_discount_service(tmp_path / "nowhere")
    copy = _copy(model_dir, tmp_path)
    (copy / "features.json").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_discount_service(copy)


def test_schema_version_mismatch_is_rejected(model_dir, tmp_path):
    copy = _copy(model_dir, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["schema_version"] = artifact_mod.SCHEMA_VERSION + 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="schema version"):
        load_discount_service(copy)


def test_parent_folder_is_accepted(model_dir, service):
    assert load_discount_service(model_dir.parent).version == service.version


# ---------------------------------------------------------------------------------------------- service

def test_predict_contract(service):
    out = service.predict(PredictDiscountArgs(**_request()))
    assert set(out) == {"predicted_discount_percentage", "model_version"}
    assert 0 <= out["predicted_discount_percentage"] <= 100
    assert out["model_version"] == service.version


def test_leaf_name_and_full_path_predict_the_same(service, demo_frame):
    row = demo_frame.iloc[0]
    common = dict(actual_price=row["actual_price"], rating=4.0, rating_count=100, product_name=row["product_name"])
    by_leaf = service.predict(PredictDiscountArgs(category=row["leaf_category"], **common))
    by_leaf_lower = service.predict(PredictDiscountArgs(category=row["leaf_category"].lower(), **common))
    by_path = service.predict(PredictDiscountArgs(category=row["category"], **common))
    assert by_leaf == by_path == by_leaf_lower
    frame = request_frame([{"category": row["leaf_category"], **common}], service._encoder.leaf_lookup)
    assert frame.loc[0, "category"] == row["category"]


@pytest.mark.parametrize("spelling", ["Smart Watches", "smartwatch", "SMARTWATCHES", "smart-watch"])
def test_leaf_names_match_ignoring_case_spaces_and_plural(spelling):
    lookup = {"SmartWatches": "Electronics|WearableTechnology|SmartWatches",
              "USBCables": "Computers&Accessories|Cables|USBCables"}
    frame = request_frame([{"category": spelling, "actual_price": 1, "rating": 4, "rating_count": 1}], lookup)
    assert frame.loc[0, "category"] == "Electronics|WearableTechnology|SmartWatches"
    frame = request_frame([{"category": "usb cable", "actual_price": 1, "rating": 4, "rating_count": 1}], lookup)
    assert frame.loc[0, "category"] == "Computers&Accessories|Cables|USBCables"
    frame = request_frame([{"category": "garden hose", "actual_price": 1, "rating": 4, "rating_count": 1}], lookup)
    assert frame.loc[0, "category"] == "garden hose"  # not a known leaf: stays an unknown category


_TYPO_LOOKUP = {"Thermometers": "Health|Medical|Thermometers", "BabyMonitors": "Home|Baby|BabyMonitors",
                "Cables": "Computers|Cables", "Cases": "Electronics|Mobiles|Cases",
                "HandBlenders": "Home|Kitchen|HandBlenders", "StandBlenders": "Home|Kitchen|StandBlenders",
                "PowerBanks": "Electronics|Mobiles|PowerBanks", "PowerBands": "Sports|Fitness|PowerBands",
                "InternalHardDrives": "Computers|Storage|InternalHardDrives"}


@pytest.mark.parametrize(("spelling", "path"), [
    ("therrmometers", "Health|Medical|Thermometers"),      # a doubled letter
    ("baby moniitors", "Home|Baby|BabyMonitors"),          # a typo inside a two-word name
    ("Thermometr", "Health|Medical|Thermometers"),         # a dropped letter, singular
    ("cabels", "cabels"),                                  # a swap in a short name: not guessed
    ("hand blendr", "Home|Kitchen|HandBlenders"),           # closer to one leaf than to its neighbour
    ("power banss", "power banss"),                        # as close to two leaves: not guessed
    ("garden hose", "garden hose"),                        # like nothing known: unknown
    ("external hard drives", "external hard drives"),      # one word away is another kind, not a typo
])
def test_misspelt_leaf_names_resolve_only_when_one_leaf_is_close(spelling, path):
    frame = request_frame([{"category": spelling, "actual_price": 1, "rating": 4, "rating_count": 1}], _TYPO_LOOKUP)
    assert frame.loc[0, "category"] == path


def test_unknown_category_and_no_text_still_predict(service):
    out = service.predict(PredictDiscountArgs(category="Telescopes", actual_price=15000, rating=3.5, rating_count=3))
    assert 0 <= out["predicted_discount_percentage"] <= 100
    full = service.explain_all({"category": "Telescopes", "actual_price": 15000, "rating": 3.5, "rating_count": 3})
    assert any(c["feature"] == "category: Telescopes" for c in full["contributions"])


def test_fast_scoring_paths_match_the_plain_ones(trained, demo_frame):
    """One-row requests skip pandas string accessors, blank text fields and the DMatrix; the numbers must be the
    same as the plain pandas/DMatrix computation."""
    import xgboost as xgb

    from tools.discount.features import _strings, request_frame

    column = pd.Series(["a", None, float("nan"), pd.NA, 3], dtype=object)
    assert list(_strings(column)) == list(column.fillna("").astype(str))
    enc = trained.model.encoder
    frames = [demo_frame, request_frame([{"category": "SmartWatches", "actual_price": 2999, "rating": 4.1,
                                          "rating_count": 1200},
                                         {"category": "Telescopes", "actual_price": None, "rating": None,
                                          "rating_count": None}], enc.leaf_lookup)]
    for frame in frames:
        matrix = enc.transform(frame)
        plain = trained.model.booster.predict(xgb.DMatrix(matrix, feature_names=enc.feature_names, missing=np.nan))
        np.testing.assert_array_equal(trained.model.raw_predict(frame), plain)
    # a blank text field scores as an all-zero vector: the same as sending the text through the vectorizer
    texts = pd.Series(["", "  "], dtype=object)
    for fld, vec in enc.vectorizers.items():
        assert vec.transform(texts).nnz == 0, fld
        # term counts built from the analyzer are scikit-learn's own, indices sorted
        counter, _ = vec._counter()
        docs = list(enc.field_texts(demo_frame, fld))
        ours, theirs = vec._counts(counter, docs), counter.transform(docs).tocsr()
        assert ours.has_sorted_indices and (ours != theirs).nnz == 0 and ours.dtype == theirs.dtype, fld


def test_prediction_depends_on_inputs(service):
    cheap = service.predict(PredictDiscountArgs(**_request(actual_price=300)))
    dear = service.predict(PredictDiscountArgs(**_request(actual_price=30000, category="Electronics|HomeTheater")))
    assert cheap != dear


def test_explanation_sums_to_prediction(service, demo_frame):
    for _, row in demo_frame.head(5).iterrows():
        args = ExplainDiscountArgs(category=row["category"], actual_price=row["actual_price"],
                                   rating=row["rating"] if row["rating"] == row["rating"] else 4.0,
                                   rating_count=int(row["rating_count"]) if row["rating_count"] == row["rating_count"]
                                   else 10, product_name=row["product_name"], about_product=row["about_product"])
        full = service.explain_all(args)
        total = full["base_value"] + sum(c["value"] for c in full["contributions"])
        assert total == pytest.approx(full["raw_prediction"], abs=1e-3)
        clipped = min(max(full["raw_prediction"], 0), 100)
        assert full["predicted_discount_percentage"] == pytest.approx(clipped, abs=0.01)
        assert service.predict(args)["predicted_discount_percentage"] == full["predicted_discount_percentage"]
        top = service.explain(args)
        assert set(top) == {"predicted_discount_percentage", "base_value", "model_version", "contributions"}
        assert len(top["contributions"]) == 5
        values = [abs(c["value"]) for c in top["contributions"]]
        assert values == sorted(values, reverse=True)
        names = {c["feature"] for c in full["contributions"]}
        assert f"category: {row['leaf_category']}" in names
        assert f"brand: {row['brand']}" in names
        assert {"actual_price", "rating", "rating_count", "name text"} <= names


def test_predict_frame_accepts_raw_strings(service, demo_frame):
    rows = pd.DataFrame([
        {"category": "SmartWatches", "actual_price": "₹4,999", "rating": "4.1", "rating_count": "1,79,691"},
        {"category": "SmartWatches", "actual_price": 4999.0, "rating": 4.1, "rating_count": 179691},
        {"category": "SmartWatches", "actual_price": "4999", "rating": "|", "rating_count": ""},
    ])
    out = service.predict_frame(rows)
    assert out.loc[0, "predicted_discount_percentage"] == out.loc[1, "predicted_discount_percentage"]
    assert 0 <= out.loc[2, "predicted_discount_percentage"] <= 100
    assert len(service.predict_frame(demo_frame)) == len(demo_frame)
    with pytest.raises(ValidationError) as info:
        service.predict_frame(pd.DataFrame([{"category": "", "actual_price": "free"}]))
    assert set(info.value.invalid_fields) == {"row 1: category", "row 1: actual_price"}


# ---------------------------------------------------------------------------------------------- request validation

def test_request_validation_lists_every_problem_field():
    with pytest.raises(ValidationError) as info:
        parse_discount_request({"actual_price": "abc", "rating": 7, "product_name": 12, "colour": "red"})
    err = info.value
    assert err.required_fields == ["category", "actual_price", "rating", "rating_count"]
    assert set(err.invalid_fields) == {"category", "actual_price", "rating", "rating_count", "product_name", "colour"}
    assert err.invalid_fields["category"] == "required"
    assert err.invalid_fields["rating_count"] == "required"


def test_request_validation_non_dict_body_and_ranges():
    with pytest.raises(ValidationError) as info:
        parse_discount_request(["not", "an", "object"])
    assert "body" in info.value.invalid_fields and info.value.required_fields
    with pytest.raises(ValidationError) as info:
        parse_discount_request(_request(actual_price=-5, rating_count=2.5, rating=True))
    assert set(info.value.invalid_fields) == {"actual_price", "rating_count", "rating"}


def test_request_accepts_catalog_style_strings():
    args = parse_discount_request(_request(actual_price="₹2,499", rating="4.2", rating_count="1,79,691"))
    assert (args.actual_price, args.rating, args.rating_count) == (2499.0, 4.2, 179691)
    explain_args = parse_discount_request(_request(), model=ExplainDiscountArgs)
    assert isinstance(explain_args, ExplainDiscountArgs)


# ---------------------------------------------------------------------------------------------- builder

def test_ensure_reuses_and_rebuilds(tmp_path, demo_catalog_path, monkeypatch):
    from tools.discount import build

    monkeypatch.setattr(build, "BUILD_CONFIG", QUICK)
    first = ensure_discount_model(demo_catalog_path, tmp_path, False)
    assert first.startswith("trained")
    assert ensure_discount_model(demo_catalog_path, tmp_path, False).startswith("up to date")
    assert stale_reason(tmp_path / "discount_model", "0" * 64) == "the catalog changed"
    monkeypatch.setattr(build, "code_version", lambda: "something-else")
    assert stale_reason(tmp_path / "discount_model", demo_catalog_path.read_bytes() and
                        json.loads((tmp_path / "discount_model/manifest.json").read_text())["data_sha256"]
                        ) == "the model code changed"
    assert ensure_discount_model(demo_catalog_path, tmp_path, False).startswith("trained (the model code changed)")


# ---------------------------------------------------------------------------------------------- CLI

def test_cli_evaluate_and_predict(model_dir, demo_catalog_path, tmp_path, capsys):
    assert cli_main(["evaluate", "--model", str(model_dir), "--data", str(demo_catalog_path)]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["trained_on_same_data"] is True and scored["rows"] > 300
    assert {"mae", "rmse", "r2"} <= set(scored["model"]) and scored["model"]["mae"] < scored["baseline_median"]["mae"]

    rows = [_request(), _request(category="Electronics|Headphones,Earbuds&Accessories|Headphones|In-Ear",
                                 actual_price="₹1,999")]
    rows_json = tmp_path / "rows.json"
    rows_json.write_text(json.dumps(rows))
    assert cli_main(["predict", "--model", str(model_dir), "--input", str(rows_json), "--explain"]) == 0
    explained = json.loads(capsys.readouterr().out)["predictions"]
    assert len(explained) == 2 and len(explained[0]["contributions"]) == 5
    rows_csv = tmp_path / "rows.csv"
    pd.DataFrame(rows).to_csv(rows_csv, index=False)
    assert cli_main(["predict", "--model", str(model_dir), "--input", str(rows_csv)]) == 0
    plain = json.loads(capsys.readouterr().out)["predictions"]
    assert [p["predicted_discount_percentage"] for p in plain] == [
        e["predicted_discount_percentage"] for e in explained]


@pytest.mark.slow
def test_cli_train_evaluate_predict(tmp_path, demo_catalog_path, capsys):
    raw = pd.read_csv(demo_catalog_path, dtype=str, keep_default_na=False)
    ids = raw["product_id"].unique()
    train_csv, test_csv = tmp_path / "train.csv", tmp_path / "test.csv"
    raw[raw["product_id"].isin(ids[:250])].to_csv(train_csv, index=False)
    raw[raw["product_id"].isin(ids[250:])].to_csv(test_csv, index=False)

    assert cli_main(["train", "--data", str(train_csv), "--out", str(tmp_path / "out"), "--search", "tiny",
                     "--n-iter", "1", "--no-progress"]) == 0
    trained = json.loads(capsys.readouterr().out)
    model = Path(trained["model_dir"])
    assert (model / "model.json").is_file() and trained["cv"]["mae"] > 0

    assert cli_main(["evaluate", "--model", str(model), "--data", str(test_csv)]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["rows"] == int(raw["product_id"].isin(ids[250:]).sum())
    assert scored["trained_on_same_data"] is False
    assert scored["model"]["mae"] < scored["baseline_median"]["mae"]

    assert cli_main(["predict", "--model", str(model), "--input", str(test_csv), "--explain"]) == 0  # raw schema
    predicted = json.loads(capsys.readouterr().out)["predictions"]
    assert len(predicted) == scored["rows"] and predicted[0]["product_id"] == raw.loc[
        raw["product_id"].isin(ids[250:]), "product_id"].iloc[0]


def test_cli_errors_exit_2_without_traceback(tmp_path, capsys):
    assert cli_main(["predict", "--model", str(tmp_path / "missing"), "--input", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert any(line.startswith("error: ") and "not found" in line for line in err.splitlines())
    assert "Traceback" not in err
    assert cli_main(["train", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    assert cli_main(["bogus"]) == 2


def test_cli_predict_lists_bad_rows(model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([_request(), {"category": "X", "actual_price": "abc"}]))
    assert cli_main(["predict", "--model", str(model_dir), "--input", str(bad), "--explain"]) == 2
    err = capsys.readouterr().err
    assert "row 2: actual_price" in err and "row 2: rating" in err


# ---------------------------------------------------------------------------------------------- real data

@pytest.mark.slow
@pytest.mark.real_data
def test_real_catalog_training_beats_median(real_catalog_path, tmp_path):
    from tools.discount.build import train_and_save

    folder, metrics = train_and_save(real_catalog_path, tmp_path,
                                     TrainConfig(n_iter=1, search="small", folds=3, progress=False,
                                                 cv_all_rows=False))
    assert (folder / "metrics.json").is_file()
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["cv"]["mae"] < saved["cv_baseline_median"]["mae"]
    assert saved["test"]["mae"] < saved["test_baseline_median"]["mae"]
    assert saved["products"] > 1000
