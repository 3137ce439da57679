"""`rs-vit train` with bad configs and bad labels: one line naming the key or file and the fix,
exit code 2, no traceback, nothing run."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import yaml
from shapely.geometry import Polygon, box

from _helpers_reliability import assert_clean_error, cli, make_scene, snapshot
from _helpers_train import CLASSES, write_scene

# -- configs -------------------------------------------------------------------------------


def _train_with_config(tmp_path: Path, cfg: dict | str, *must: str) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    before = snapshot(tmp_path)
    res = cli("train", "--config", path, "--no-progress", "--out-dir", tmp_path / "run")
    line = assert_clean_error(res, *must)
    assert snapshot(tmp_path) == before, "a refused config wrote something"
    return line


@pytest.mark.parametrize("cfg,must", [
    ({"trian": {"epochs": 2}}, ["unknown key 'trian'", "Did you mean 'train'"]),
    ({"train": {"epoch": 2}}, ["train.epoch", "Did you mean 'epochs'"]),
    ({"model": {"nmae": "segformer_b0"}}, ["model.nmae", "Did you mean 'name'"]),
    ({"data": {"val_fraktion": 0.2}}, ["data.val_fraktion", "Did you mean 'val_fraction'"]),
    ({"train": {"epochs": "ten"}}, ["train.epochs", "'ten'"]),
    ({"train": {"lr": [1, 2]}}, ["train.lr"]),
    ({"train": {"tile_size": 8}}, ["train.tile_size", "16"]),
    ({"train": {"val_overlap": 1.0}}, ["train.val_overlap", "1"]),
    ({"train": {"val_overlap": 1.5}}, ["train.val_overlap"]),
    ({"data": {"val_fraction": 1.0}}, ["data.val_fraction"]),
    ({"train": {"batch_size": 0}}, ["train.batch_size"]),
    ({"train": {"precision": "fp8"}}, ["train.precision", "fp8"]),
    ({"data": {"classes": [{"id": 0, "name": "a"}, {"id": 2, "name": "b"}]}}, ["contiguous"]),
    ({"data": {"block_size": 32}, "train": {"tile_size": 64}}, ["block_size", "tile_size"]),
    ({"train": {"loss": "ce+nonsense"}}, ["nonsense"]),
])
def test_bad_config_values(tmp_path: Path, cfg: dict, must: list[str]) -> None:
    _train_with_config(tmp_path, cfg, *must)


def test_tile_not_valid_for_the_model(tmp_path: Path) -> None:
    paths = write_scene(tmp_path / "d")
    cfg = {"data": {"scenes": [{"image": str(paths["image"]), "labels": str(paths["labels"])}], "classes": CLASSES},
           "model": {"name": "unet_resnet18"}, "train": {"tile_size": 48}}
    _train_with_config(tmp_path, cfg, "48", "unet_resnet18", "64")


def test_invalid_yaml(tmp_path: Path) -> None:
    _train_with_config(tmp_path, "train: {epochs: [1, 2\n", "run.yaml", "invalid YAML")


def test_yaml_not_a_mapping(tmp_path: Path) -> None:
    _train_with_config(tmp_path, "- just\n- a list\n", "run.yaml", "mapping")


def test_yaml_cannot_run_code(tmp_path: Path) -> None:
    """YAML is loaded with safe_load: a python/object tag is refused, its code never runs."""
    marker = tmp_path / "pwned"
    text = f"train:\n  epochs: !!python/object/apply:os.system ['touch {marker}']\n"
    _train_with_config(tmp_path, text, "run.yaml", "invalid YAML")
    assert not marker.exists()


def test_missing_config_file(tmp_path: Path) -> None:
    res = cli("train", "--config", tmp_path / "nope.yaml")
    assert res.code == 2 and "Traceback" not in res.stderr
    assert "nope.yaml" in res.stderr and "does not exist" in res.stderr.lower()


def test_classes_file_with_unknown_key(tmp_path: Path) -> None:
    classes = tmp_path / "classes.yaml"
    classes.write_text(yaml.safe_dump({"classes": [{"id": 0, "name": "a", "colour": [1, 2, 3]},
                                                   {"id": 1, "name": "b"}]}))
    res = cli("train", "--classes", classes, "--no-progress", "--out-dir", tmp_path / "run")
    assert_clean_error(res, "colour", "Did you mean 'color'")
    assert not (tmp_path / "run").exists()


# -- labels ----------------------------------------------------------------------------------

@pytest.fixture()
def scene(tmp_path: Path) -> dict[str, Path]:
    return write_scene(tmp_path / "d")


def _train_labels(tmp_path: Path, scene: dict[str, Path], labels: Path, *must: str,
                  extra: tuple[str, ...] = ()) -> str:
    res = cli("train", "--image", scene["image"], "--labels", labels, "--classes", scene["classes"],
              "--model", "unet_resnet18", "--tile-size", "32", "--epochs", "1", "--steps-per-epoch", "1",
              "--batch-size", "2", "--no-progress", "--out-dir", tmp_path / "run", *extra)
    return assert_clean_error(res, *must)


def _polys(scene: dict[str, Path], values: list[int], crs: str | None = "EPSG:32633") -> gpd.GeoDataFrame:
    import rasterio

    with rasterio.open(scene["image"]) as src:
        left, bottom, right, top = src.bounds
    geoms = [box(left + 20 * i, bottom + 20, left + 20 * i + 100, bottom + 120) for i in range(len(values))]
    return gpd.GeoDataFrame({"class_id": values}, geometry=geoms, crs=crs)


def test_labels_without_crs_refused(tmp_path: Path, scene: dict[str, Path]) -> None:
    path = tmp_path / "nocrs.gpkg"
    _polys(scene, [1, 2], crs=None).to_file(path)
    _train_labels(tmp_path, scene, path, "nocrs.gpkg", "no CRS", "-a_srs")


def test_geojson_declaring_wrong_crs(tmp_path: Path, scene: dict[str, Path]) -> None:
    """GeoJSON without "crs" means WGS84 (RFC 7946): metre coordinates then miss the scene, and the
    message says the declared CRS is probably wrong."""
    path = tmp_path / "metres.geojson"
    path.write_text(_polys(scene, [1, 2], crs=None).to_json())
    _train_labels(tmp_path, scene, path, "metres.geojson", "declared CRS is probably wrong")


def test_labels_missing_the_scene(tmp_path: Path, scene: dict[str, Path]) -> None:
    gdf = _polys(scene, [1, 2])
    gdf["geometry"] = gdf.geometry.translate(1e5, 1e5)
    gdf.to_file(tmp_path / "far.gpkg")
    _train_labels(tmp_path, scene, tmp_path / "far.gpkg", "far.gpkg", "no label geometry overlaps")


def test_labels_with_undeclared_class(tmp_path: Path, scene: dict[str, Path]) -> None:
    _polys(scene, [1, 7]).to_file(tmp_path / "seven.gpkg")
    _train_labels(tmp_path, scene, tmp_path / "seven.gpkg", "[7]", "not declared")


def test_labels_only_empty_geometries(tmp_path: Path, scene: dict[str, Path]) -> None:
    gdf = gpd.GeoDataFrame({"class_id": [1, 2]}, geometry=[Polygon(), Polygon()], crs="EPSG:32633")
    gdf.to_file(tmp_path / "empty.gpkg")
    _train_labels(tmp_path, scene, tmp_path / "empty.gpkg", "empty.gpkg", "no geometries")


def test_labels_without_class_attribute(tmp_path: Path, scene: dict[str, Path]) -> None:
    gdf = _polys(scene, [1, 2]).rename(columns={"class_id": "kind"})
    gdf.to_file(tmp_path / "kind.gpkg")
    _train_labels(tmp_path, scene, tmp_path / "kind.gpkg", "class_id", "kind")


def test_label_raster_on_another_grid(tmp_path: Path, scene: dict[str, Path]) -> None:
    other = make_scene(tmp_path / "lab.tif", 40, 40, bands=["class"], dtype="uint8", nodata=255,
                       data=np.zeros((1, 40, 40)))
    _train_labels(tmp_path, scene, other, "lab.tif", "differs from scene", "resample")


def test_labels_not_readable(tmp_path: Path, scene: dict[str, Path]) -> None:
    bad = tmp_path / "bad.gpkg"
    bad.write_bytes(b"SQLite format 3\x00 but not really")
    _train_labels(tmp_path, scene, bad, "bad.gpkg", "cannot be read")


def test_refused_labels_leave_no_run_directory(tmp_path: Path, scene: dict[str, Path]) -> None:
    _polys(scene, [1, 7]).to_file(tmp_path / "seven.gpkg")
    _train_labels(tmp_path, scene, tmp_path / "seven.gpkg", "not declared")
    assert not (tmp_path / "run").exists()


# -- labels that are fine: reprojected, repaired -----------------------------------------------

def test_labels_in_another_crs_are_reprojected(scene: dict[str, Path]) -> None:
    from rs_vit.io.labels import rasterize_labels
    from rs_vit.io.raster import scene_info

    info = scene_info(scene["image"])
    gdf = _polys(scene, [1, 2])
    a = rasterize_labels(load_vector_labels_from(gdf, scene, "a.gpkg"), info, "class_id", class_values=[0, 1, 2])
    b = rasterize_labels(load_vector_labels_from(gdf.to_crs("EPSG:4326"), scene, "b.gpkg"), info, "class_id",
                         class_values=[0, 1, 2])
    assert (a != 255).sum() > 100
    assert (a == b).mean() > 0.98  # same pixels up to resampling at polygon edges


def load_vector_labels_from(gdf: gpd.GeoDataFrame, scene: dict[str, Path], name: str) -> gpd.GeoDataFrame:
    from rs_vit.io.labels import load_vector_labels
    from rs_vit.io.raster import scene_info

    path = scene["image"].with_name(name)
    gdf.to_file(path)
    return load_vector_labels(path, scene_info(scene["image"]), "class_id")


def test_invalid_geometries_are_repaired(scene: dict[str, Path]) -> None:
    from rs_vit.io.labels import rasterize_labels
    from rs_vit.io.raster import scene_info

    info = scene_info(scene["image"])
    left, bottom, right, top = info.transform.c, info.transform.f - 480, info.transform.c + 640, info.transform.f
    bowtie = Polygon([(left, bottom), (right, top), (right, bottom), (left, top)])  # self-intersecting
    gdf = gpd.GeoDataFrame({"class_id": [2]}, geometry=[bowtie], crs="EPSG:32633")
    assert not gdf.geometry.is_valid.all()
    out = load_vector_labels_from(gdf, scene, "bowtie.gpkg")
    assert out.geometry.is_valid.all()
    arr = rasterize_labels(out, info, "class_id", class_values=[0, 1, 2])
    assert (arr == 2).sum() > 0.3 * arr.size


# -- scenes that cannot train --------------------------------------------------------------------

def test_scene_smaller_than_one_tile(tmp_path: Path) -> None:
    small = write_scene(tmp_path / "small", h=20, w=24)
    _train_labels(tmp_path, small, small["labels"], "32x32", "tile_size")


def test_all_nodata_scene(tmp_path: Path) -> None:
    import rasterio

    blank = write_scene(tmp_path / "blank")
    with rasterio.open(blank["image"], "r+") as dst:
        dst.write(np.zeros((6, 48, 64), np.uint16))
    _train_labels(tmp_path, blank, blank["labels"], "no valid pixels", "nodata")
