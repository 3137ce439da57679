"""The per-pixel baseline (rs_vit.baseline, ``rs-vit baseline``): same pixels as training, a safe
array format that predicts what scikit-learn predicts, bounded-memory georeferenced masks, and
metrics computed like a model's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

pytest.importorskip("sklearn")

from _helpers_reliability import assert_clean_error, cli  # noqa: E402
from _helpers_train import CLASSES, tiny_config, write_scene  # noqa: E402

from rs_vit.baseline import (  # noqa: E402
    BaselineOptions, compute_features, fit_baseline, from_sklearn, load_baseline,
    predict_baseline_scene, run_baseline, sample_training_pixels, save_baseline,
)
from rs_vit.config import parse_config  # noqa: E402
from rs_vit.errors import CheckpointError, ConfigError  # noqa: E402

FAST = {"n_estimators": 5, "n_jobs": 1}


def _cfg(tmp_path: Path, **data) -> object:
    paths = write_scene(tmp_path / "d", h=48, w=64)
    d = tiny_config(paths, tmp_path / "run")
    d["data"].update(data)
    return parse_config(d)


@pytest.mark.parametrize("kind", ["rf", "hgb"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_arrays_predict_like_sklearn(kind: str, n_classes: int) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (n_classes == 3) * (x[:, 2] > 1)
    x[::50, 3] = np.nan  # missing values are routed like scikit-learn routes them
    est = (RandomForestClassifier(n_estimators=8, random_state=0) if kind == "rf"
           else HistGradientBoostingClassifier(max_iter=15, random_state=0)).fit(x, y)
    classes = [{"id": i, "name": f"c{i}", "color": None} for i in range(4)]  # class 3 never seen
    clf = from_sklearn(est, method="random_forest" if kind == "rf" else "gradient_boosting",
                       bands=["a", "b", "c", "d"], indices=[], classes=classes)
    xt = rng.normal(size=(5000, 4)).astype(np.float32)
    xt[:40, 3] = np.nan
    p = clf.predict_proba_features(xt.T, chunk=777)
    ref = est.predict_proba(xt)
    assert p.shape == (4, 5000)
    np.testing.assert_allclose(p[:n_classes].T, ref, atol=1e-6)
    assert np.all(p[n_classes:] == 0)
    np.testing.assert_array_equal(p.argmax(0), est.predict(xt))
    # the compiled walk (scikit-learn's Tree rebuilt from the arrays) and the NumPy walk agree
    assert clf._compiled_trees() is not None
    np.testing.assert_array_equal(clf.leaves_fast(xt.T), clf.leaves(xt.T))


def test_indices_are_normalised_differences() -> None:
    raw = np.array([[100, 0], [300, 0], [200, 0]], np.uint16)  # green, nir, red
    f = compute_features(raw, ["green", "nir", "red"], ["ndvi", "ndwi"])
    assert f.shape == (5, 2) and f.dtype == np.float32
    np.testing.assert_allclose(f[3], [(300 - 200) / 500, 0.0])  # 0 where nir + red == 0
    np.testing.assert_allclose(f[4], [(100 - 300) / 400, 0.0])


def test_sample_uses_only_training_cells_and_balances_classes(tmp_path: Path) -> None:
    from rs_vit.data.scenes import load_scene
    from rs_vit.data.split import TRAIN

    cfg = _cfg(tmp_path, split_mode="blocks", block_size=32, ignore_values=[2])
    s = load_scene(cfg.data.scenes[0], cfg.data, tile=cfg.train.tile_size, seed=cfg.train.seed)
    train = s.split.mask(TRAIN)
    lab = s.labels
    big = sample_training_pixels(cfg, max_pixels=10**6)
    # every labelled training pixel of class 0/1, none of the ignored class 2, no nodata, no val pixel
    for k in (0, 1):
        assert big.available[k] == int(((lab == k) & train).sum()) == int((big.y == k).sum())
    assert 2 not in set(big.y.tolist())
    img = s.image.reshape(s.image.shape[0], -1).T.astype(np.float32)
    want = {tuple(v) for v in img[(train & (lab < 2)).reshape(-1)]}
    assert {tuple(v) for v in big.x} <= want
    assert not np.any(np.all(big.x == 0, axis=1))  # the nodata corner never enters
    small = sample_training_pixels(cfg, max_pixels=100, seed=3)
    counts = np.bincount(small.y, minlength=3)
    assert counts[0] == 33 and counts[1] == min(33, big.available[1])  # 100 // 3 classes
    again = sample_training_pixels(cfg, max_pixels=100, seed=3)
    np.testing.assert_array_equal(small.x, again.x)  # seeded


def test_run_save_load_predict_and_evaluate_like_a_mask(tmp_path: Path) -> None:
    from rs_vit.evaluate.evaluator import evaluate_mask

    cfg = _cfg(tmp_path)
    res = run_baseline(cfg, tmp_path / "rf", BaselineOptions(indices=("ndvi", "mndwi"), **FAST), log=lambda m: None)
    m = res.metrics
    assert m is not None and m["miou"] > 0.8  # the tiny scene's classes are visible pixel by pixel
    (mask,) = res.masks
    paths = cfg.data.scenes[0]
    with rasterio.open(mask) as dst, rasterio.open(paths.image) as src:
        assert (dst.crs, dst.transform, dst.width, dst.height) == (src.crs, src.transform, src.width, src.height)
        assert dst.nodata == 255 and dst.descriptions == ("class",)
        pred = dst.read(1)
        assert np.all(pred[:4, :4] == 255)  # the scene's nodata corner
        assert set(np.unique(pred[4:])) <= {0, 1, 2}
    # the validation rows of the mask, scored with `rs-vit evaluate`, give the same counts
    H = pred.shape[0]
    cut = int(round(H * (1 - cfg.data.val_fraction)))
    ev = evaluate_mask(mask, paths.labels, class_names=[c["name"] for c in CLASSES], rows=(cut, H))
    assert ev["confusion_matrix"] == m["confusion_matrix"]
    assert ev["miou"] == pytest.approx(m["miou"])
    # reloaded from the safe format: identical predictions; the JSON records how it was trained
    clf = load_baseline(tmp_path / "rf")
    assert clf.bands == res.classifier.bands and clf.indices == ["ndvi", "mndwi"]
    out2 = predict_baseline_scene(clf, paths.image, tmp_path / "again.tif", max_pixels=64 * 5)
    assert out2.strips == 10  # 5 rows at a time: bounded memory
    with rasterio.open(out2.out) as dst:
        np.testing.assert_array_equal(dst.read(1), pred)
    meta = json.loads((tmp_path / "rf" / "baseline.json").read_text())
    assert meta["info"]["split"]["val_fraction"] == cfg.data.val_fraction
    assert sum(meta["info"]["train_pixels"].values()) > 0


def test_load_refuses_edited_or_foreign_files(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    clf = fit_baseline(cfg, BaselineOptions(**FAST), log=lambda m: None)
    d = save_baseline(clf, tmp_path / "b")
    w = d / "baseline.safetensors"
    blob = bytearray(w.read_bytes())
    blob[-1] ^= 1
    w.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_baseline(d)
    # consistent hash but a child index out of range: refused before any prediction
    from safetensors.numpy import save

    t = clf.tensors()
    t["left"][0] = len(t["left"]) + 5
    blob2 = save(t)
    w.write_bytes(blob2)
    meta = json.loads((d / "baseline.json").read_text())
    meta["sha256"] = hashlib.sha256(blob2).hexdigest()
    (d / "baseline.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="inconsistent"):
        load_baseline(d)
    (d / "baseline.json").write_text(json.dumps({**meta, "format": "something-else"}))
    with pytest.raises(CheckpointError, match="not an rs-vit baseline"):
        load_baseline(d)
    with pytest.raises(CheckpointError, match="not an rs-vit baseline"):
        load_baseline(tmp_path)


def test_bad_options_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="random_forest"):
        BaselineOptions(method="random_forrest")
    with pytest.raises(ConfigError, match="ndvi"):
        BaselineOptions(indices=("ndvii",))
    paths = write_scene(tmp_path / "d", h=32, w=32)
    d = tiny_config(paths, tmp_path / "run")
    d["data"]["bands"] = ["b1", "b2", "b3", "b4", "b5", "b6"]
    with pytest.raises(ConfigError, match="lack"):
        sample_training_pixels(parse_config(d), indices=("ndvi",))


def test_cli_fit_then_predict_with_saved_model(tmp_path: Path) -> None:
    import yaml

    cfg = tiny_config(write_scene(tmp_path / "d", h=40, w=48), tmp_path / "run")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    res = cli("baseline", "--config", tmp_path / "run.yaml", "--out-dir", tmp_path / "rf",
              "--method", "gradient_boosting", "--n-estimators", "10", "--jobs", "1")
    assert res.code == 0, res.stderr
    assert "Validation mIoU" in res.stdout
    assert (tmp_path / "rf" / "metrics.json").is_file()
    assert (tmp_path / "rf" / "masks" / "scene_mask.tif").is_file()
    res = cli("baseline", "--model", tmp_path / "rf", "--predict", tmp_path / "d" / "scene.tif",
              "--out-dir", tmp_path / "pred")
    assert res.code == 0, res.stderr
    assert (tmp_path / "pred" / "scene_mask.tif").is_file()
    res = cli("baseline", "--config", tmp_path / "run.yaml", "--out-dir", tmp_path / "rf")
    assert_clean_error(res, "already exists")
    res = cli("baseline", "--config", tmp_path / "run.yaml", "--out-dir", tmp_path / "x", "--method", "svm")
    assert_clean_error(res, "random_forest")
