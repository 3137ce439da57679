"""The bundled sample scene (sample_data/) and the tiny fixtures (tests/data/) are what they claim.

Fast checks only: the grids agree, bands are named, nodata regions match between images and
labels, vector labels rasterise back onto the raster labels, and the fixture script is
deterministic (re-running it into a temporary folder gives identical arrays).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from rasterio.features import rasterize

S2_6 = ("blue", "green", "red", "nir", "swir16", "swir22")
S2_13 = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
RASTERS = ("tiny_scene.tif", "tiny_labels.tif", "tiny_scene_13b.tif", "tiny_float.tif")


def _load_fixture_script(data_dir: Path):
    spec = importlib.util.spec_from_file_location("rs_vit_make_fixtures", data_dir / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _grid(src) -> tuple:
    return src.crs, src.transform, src.width, src.height


def _classes(path: Path) -> dict[int, str]:
    return {c["id"]: c["name"] for c in yaml.safe_load(path.read_text())["classes"]}


# ------------------------------------------------------------------------------------------------
# sample_data/
# ------------------------------------------------------------------------------------------------


def test_sample_scene_and_labels_share_the_grid(sample_dir: Path):
    with rasterio.open(sample_dir / "scene.tif") as img, rasterio.open(sample_dir / "labels.tif") as lab:
        assert _grid(img) == _grid(lab)
        assert img.crs.to_epsg() == 32633
        assert img.res == (10.0, 10.0)
        assert (img.width, img.height) == (1024, 1024)


def test_sample_scene_bands_and_layout(sample_dir: Path):
    with rasterio.open(sample_dir / "scene.tif") as src:
        assert src.descriptions == S2_6
        assert src.count == 6 and src.dtypes == ("uint16",) * 6
        assert src.nodata == 0
        assert src.block_shapes == [(256, 256)] * 6
        structure = src.tags(ns="IMAGE_STRUCTURE")
        assert structure["COMPRESSION"] == "DEFLATE" and structure["PREDICTOR"] == "2"
        assert src.scales == (0.0001,) * 6
        assert src.tags(4)["SENTINEL2_BAND"] == "B08"
    with rasterio.open(sample_dir / "labels.tif") as src:
        assert src.count == 1 and src.dtypes == ("uint8",) and src.nodata == 255


def test_sample_nodata_regions_agree(sample_dir: Path):
    with rasterio.open(sample_dir / "scene.tif") as src:
        img = src.read()
    with rasterio.open(sample_dir / "labels.tif") as src:
        lab = src.read(1)
    image_nodata = np.all(img == 0, axis=0)
    assert np.array_equal(image_nodata, lab == 255)
    assert not np.any(img[:, ~image_nodata] == 0), "a valid pixel has a 0 (nodata) band value"
    assert 0.01 < image_nodata.mean() < 0.2
    classes = _classes(sample_dir / "classes.yaml")
    assert set(np.unique(lab[lab != 255]).tolist()) == set(classes)


def test_sample_vector_labels_rasterise_back(sample_dir: Path):
    gdf = gpd.read_file(sample_dir / "labels.gpkg")
    assert {"class_id", "class_name"} <= set(gdf.columns)
    classes = _classes(sample_dir / "classes.yaml")
    assert all(classes[i] == n for i, n in zip(gdf["class_id"], gdf["class_name"]))
    with rasterio.open(sample_dir / "labels.tif") as src:
        lab = src.read(1)
        assert gdf.crs == src.crs
        burnt = rasterize(zip(gdf.geometry, gdf["class_id"].astype(int)), out_shape=lab.shape,
                          transform=src.transform, fill=255, dtype="uint8")
    assert (burnt == lab).mean() > 0.9999


# ------------------------------------------------------------------------------------------------
# tests/data/
# ------------------------------------------------------------------------------------------------


def test_tiny_scene_and_labels(data_dir: Path):
    with rasterio.open(data_dir / "tiny_scene.tif") as img, rasterio.open(data_dir / "tiny_labels.tif") as lab:
        assert _grid(img) == _grid(lab)
        assert (img.width, img.height) == (64, 48)
        assert img.crs.to_epsg() == 32633 and img.res == (10.0, 10.0)
        assert img.descriptions == S2_6 and img.dtypes == ("uint16",) * 6 and img.nodata == 0
        assert lab.dtypes == ("uint8",) and lab.nodata == 255
        x, y = img.read(), lab.read(1)
    nodata = np.all(x == 0, axis=0)
    assert nodata.any() and np.array_equal(nodata, y == 255)
    assert set(np.unique(y).tolist()) == {0, 1, 2, 255}
    assert set(_classes(data_dir / "classes.yaml")) == {0, 1, 2}


def test_tiny_labels_are_learnable(data_dir: Path):
    """A nearest-class-mean rule on the bands gets almost every pixel right."""
    with rasterio.open(data_dir / "tiny_scene.tif") as img, rasterio.open(data_dir / "tiny_labels.tif") as lab:
        x, y = img.read().astype(float), lab.read(1)
    valid = y != 255
    feats, target = np.log(x[:, valid].T), y[valid]
    means = np.stack([feats[target == c].mean(0) for c in range(3)])
    pred = np.argmin(((feats[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == target).mean() > 0.95


def test_tiny_other_scenes(data_dir: Path):
    with rasterio.open(data_dir / "tiny_scene_13b.tif") as src:
        assert src.descriptions == S2_13 and src.dtypes == ("int16",) * 13
        assert (src.width, src.height) == (40, 40) and src.nodata == 0
        assert np.all(src.read() == 0, axis=0).any()
    with rasterio.open(data_dir / "tiny_float.tif") as src:
        assert src.descriptions == ("VV", "VH") and src.dtypes == ("float32",) * 2
        assert (src.width, src.height) == (32, 32) and np.isnan(src.nodata)
        x = src.read()
    nan = np.isnan(x)
    assert nan.any() and np.array_equal(nan[0], nan[1])
    assert np.all(x[~nan] < 0)  # backscatter in dB


def test_tiny_vector_labels(data_dir: Path):
    with rasterio.open(data_dir / "tiny_labels.tif") as src:
        lab, transform, crs = src.read(1), src.transform, src.crs
    names = _classes(data_dir / "classes.yaml")
    gdf = gpd.read_file(data_dir / "tiny_labels.gpkg")
    assert gdf.crs == crs
    assert all(names[i] == n for i, n in zip(gdf["class_id"], gdf["class_name"]))
    burnt = rasterize(zip(gdf.geometry, gdf["class_id"]), out_shape=lab.shape, transform=transform,
                      fill=255, dtype="uint8")
    assert np.array_equal(burnt, lab)
    wgs = gpd.read_file(data_dir / "tiny_labels_4326.geojson")
    assert wgs.crs.to_epsg() == 4326
    assert list(wgs["class_id"]) == list(gdf["class_id"])
    back = wgs.to_crs(crs)
    burnt = rasterize(zip(back.geometry, back["class_id"]), out_shape=lab.shape, transform=transform,
                      fill=255, dtype="uint8")
    assert np.array_equal(burnt, lab)


def test_fixture_script_is_deterministic(data_dir: Path, tmp_path: Path):
    module = _load_fixture_script(data_dir)
    written = module.write_all(tmp_path)
    for name in RASTERS:
        with rasterio.open(data_dir / name) as a, rasterio.open(written[name]) as b:
            assert _grid(a) == _grid(b), name
            assert a.descriptions == b.descriptions, name
            np.testing.assert_array_equal(a.read(), b.read(), err_msg=name)
    for name in ("tiny_labels.gpkg", "tiny_labels_4326.geojson"):
        a, b = gpd.read_file(data_dir / name), gpd.read_file(written[name])
        assert list(a["class_id"]) == list(b["class_id"]), name
        assert all(ga.equals_exact(gb, 1e-9) for ga, gb in zip(a.geometry, b.geometry)), name
    assert (data_dir / "classes.yaml").read_text() == written["classes.yaml"].read_text()


@pytest.mark.parametrize("name", [*RASTERS, "tiny_labels.gpkg", "tiny_labels_4326.geojson", "classes.yaml"])
def test_fixtures_are_small(data_dir: Path, name: str):
    assert (data_dir / name).stat().st_size < 64_000
