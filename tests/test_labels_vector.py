"""Vector labels: reprojection and rasterisation onto the scene grid, and the error cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from _helpers_train import one_thread  # noqa: F401  (autouse fixture)
from _helpers_train import CLASSES, SHARED, write_scene, write_vector_labels
from rs_vit.config import DataConfig, SceneDef
from rs_vit.data.scenes import load_scene
from rs_vit.errors import InputError
from rs_vit.io.labels import load_vector_labels, rasterize_labels
from rs_vit.io.raster import scene_info


def test_vector_labels_in_another_crs_match_the_raster(tmp_path: Path) -> None:
    p = write_scene(tmp_path, nodata_corner=False)
    gpkg = write_vector_labels(p, crs="EPSG:4326")
    data = DataConfig(scenes=[SceneDef(image=p["image"], labels=gpkg)], classes=CLASSES)
    s = load_scene(data.scenes[0], data)
    with rasterio.open(p["labels"]) as src:
        ref = src.read(1).astype(np.int64)
    assert (s.labels == ref).mean() > 0.97  # reprojection round trip moves only some edge pixels
    # windowed rasterisation gives the same pixels as the whole-scene one
    lazy = DataConfig(scenes=data.scenes, classes=CLASSES, cache_mb=0)
    np.testing.assert_array_equal(load_scene(lazy.scenes[0], lazy).read(10, 20, 16, 24)[1], s.labels[10:26, 20:44])


def test_label_value_and_background_for_files_without_class(tmp_path: Path) -> None:
    p = write_scene(tmp_path, nodata_corner=False)
    gpkg = write_vector_labels(p, crs="EPSG:32633", attribute="whatever", skip=(0, 255))
    data = DataConfig(scenes=[SceneDef(image=p["image"], labels=gpkg, label_value=1)], classes=CLASSES, background=0)
    s = load_scene(data.scenes[0], data)
    assert set(np.unique(s.labels)) == {0, 1}
    data = DataConfig(scenes=[SceneDef(image=p["image"], labels=gpkg, label_value=1)], classes=CLASSES)
    assert 255 in np.unique(load_scene(data.scenes[0], data).labels)  # not covered: ignored, not class 0


def test_vector_label_errors(tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    p = write_scene(tmp_path, nodata_corner=False)
    info = scene_info(p["image"])
    gpkg = write_vector_labels(p, crs="EPSG:32633")
    with pytest.raises(InputError, match=r"labels.gpkg: has no attribute 'cls'.*\['class_id'\]"):
        load_vector_labels(gpkg, info, "cls")
    gdf = load_vector_labels(gpkg, info, "class_id")
    with pytest.raises(InputError, match=r"class value\(s\) \[2\] that are not declared"):
        rasterize_labels(gdf, info, "class_id", class_values=[0, 1], source="labels.gpkg")
    # no CRS
    nocrs = tmp_path / "nocrs.shp"  # a shapefile without .prj
    gpd.GeoDataFrame({"class_id": [1]}, geometry=[box(500000, 4599700, 500100, 4599800)]).to_file(nocrs)
    with pytest.raises(InputError, match="nocrs.shp: has no CRS"):
        load_vector_labels(nocrs, info, "class_id")
    # far away: no overlap is an error, never an all-background mask
    far = tmp_path / "far.gpkg"
    gpd.GeoDataFrame({"class_id": [1]}, geometry=[box(0, 0, 10, 10)], crs="EPSG:32633").to_file(far)
    with pytest.raises(InputError, match="far.gpkg: no label geometry overlaps scene scene.tif"):
        load_vector_labels(far, info, "class_id")
    data = DataConfig(scenes=[SceneDef(image=p["image"], labels=far, label_value=7)], classes=CLASSES)
    with pytest.raises(InputError, match="label_value 7 is not a declared class"):
        load_scene(data.scenes[0], data)


def test_broken_spacenet_pair_is_refused() -> None:
    d = SHARED / "spacenet_buildings"
    if not d.is_dir():
        pytest.skip(f"real data not found at {d}")
    info = scene_info(d / "sample_geotiff_custom_proj.tif")
    with pytest.raises(InputError) as exc:
        load_vector_labels(d / "geotiff_custom_proj_labels.geojson", info, None)
    msg = str(exc.value)
    assert "geotiff_custom_proj_labels.geojson: no label geometry overlaps" in msg
    assert "not degrees" in msg and "EPSG:4326" in msg


def test_spacenet_polygons_rasterise_onto_the_pan_chip() -> None:
    d = SHARED / "spacenet_buildings"
    if not d.is_dir():
        pytest.skip(f"real data not found at {d}")
    data = DataConfig(scenes=[SceneDef(image=d / "sample_geotiff.tif", labels=d / "geotiff_labels.geojson",
                                       label_value=1)],
                      classes=[{"id": 0, "name": "background"}, {"id": 1, "name": "building"}], background=0)
    s = load_scene(data.scenes[0], data)
    share = (s.labels == 1).mean()
    assert s.labels.shape == (900, 900) and 0.02 < share < 0.5
