"""Training over many scenes in different CRSs: two scenes in neighbouring UTM zones (one given as
per-band files), one vector label file in EPSG:4326. Each scene keeps its own grid, the labels are
reprojected onto each, windows are drawn from both, statistics pool both training areas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

from _helpers_sources import smooth, write_band
from _helpers_train import one_thread  # noqa: F401  (autouse fixture)
from rs_vit.config import parse_config
from rs_vit.data.datasets import RandomWindows
from rs_vit.data.scenes import load_scene
from rs_vit.data.split import TRAIN
from rs_vit.data.stats import training_stats
from rs_vit.train.loop import train

CLASSES = [{"id": 0, "name": "other", "color": [0, 0, 0]}, {"id": 1, "name": "field", "color": [0, 255, 0]},
           {"id": 2, "name": "roof", "color": [255, 0, 0]}]
SIZE = 64
#: (EPSG, longitude, latitude) of each scene's top-left corner: either side of 6°E, the 31/32 border.
SCENES = {"west": (32631, 5.95, 45.0), "east": (32632, 6.05, 45.0)}
#: class rectangles in pixels (row0, row1, col0, col1), per scene
RECTS = {"west": [(1, 8, 30, 12, 40), (2, 40, 60, 5, 25)], "east": [(1, 5, 25, 30, 60), (2, 35, 55, 35, 50)]}


def _origin(epsg: int, lon: float, lat: float) -> tuple[float, float]:
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    return round(x, -1), round(y, -1)


def _expected(name: str) -> np.ndarray:
    lab = np.zeros((SIZE, SIZE), np.int64)
    for k, r0, r1, c0, c1 in RECTS[name]:
        lab[r0:r1, c0:c1] = k
    return lab


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import geopandas as gpd
    from shapely.geometry import box

    root = tmp_path_factory.mktemp("utm")
    out: dict[str, Path] = {}
    geoms, classes = [], []
    for i, (name, (epsg, lon, lat)) in enumerate(SCENES.items()):
        x0, y0 = _origin(epsg, lon, lat)
        t = from_origin(x0, y0, 10.0, 10.0)
        lab = _expected(name)
        bands = [smooth(SIZE, SIZE, 10 * i + b) + (400 * lab * (b + 1)).astype("uint16") for b in range(3)]
        if name == "west":  # a multi-band GeoTIFF
            out[name] = root / "west.tif"
            with rasterio.open(out[name], "w", driver="GTiff", width=SIZE, height=SIZE, count=3, dtype="uint16",
                               crs=f"EPSG:{epsg}", transform=t, nodata=0) as dst:
                dst.write(np.stack(bands))
                for b, n in enumerate(["blue", "green", "red"], 1):
                    dst.set_band_description(b, n)
        else:  # per-band files named like a Sentinel-2 product, red at 20 m
            out[name] = root / "east"
            for ident, data in zip(["B02", "B03"], bands[:2]):
                write_band(out[name] / f"T32TLR_20230101T105441_{ident}.tif", data, 10.0, crs=f"EPSG:{epsg}",
                           origin=(x0, y0))
            write_band(out[name] / "T32TLR_20230101T105441_B04.tif", bands[2][::2, ::2].copy(), 20.0,
                       crs=f"EPSG:{epsg}", origin=(x0, y0))
        for k, r0, r1, c0, c1 in RECTS[name]:
            (xa, ya), (xb, yb) = t * (c0, r1), t * (c1, r0)
            geoms.append(box(xa, ya, xb, yb).segmentize(10.0))
            classes.append(k)
        gdf_part = gpd.GeoDataFrame({"class_id": classes[-2:]}, geometry=geoms[-2:], crs=f"EPSG:{epsg}").to_crs(4326)
        out.setdefault("_parts", [])  # type: ignore[arg-type]
        out["_parts"].append(gdf_part)  # type: ignore[union-attr]
    labels = root / "labels.geojson"
    gpd.GeoDataFrame(gpd.pd.concat(out.pop("_parts"), ignore_index=True), crs=4326).to_file(labels)  # type: ignore[arg-type]
    out["labels"] = labels
    return out


def _config(world: dict[str, Path], out: Path, **data) -> dict:
    return {
        "data": {"scenes": [{"image": str(world["west"]), "labels": str(world["labels"])},
                            {"image": str(world["east"]), "labels": str(world["labels"])}],
                 "classes": CLASSES, "background": 0, "val_fraction": 0.25, **data},
        "model": {"name": "segformer_b0"},
        "train": {"out_dir": str(out), "epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "tile_size": 32,
                  "precision": "bf16", "seed": 0, "plots": False, "warmup_steps": 1, "tensorboard": False},
    }


def test_each_scene_keeps_its_grid_and_gets_its_labels(world: dict[str, Path], tmp_path: Path) -> None:
    cfg = parse_config(_config(world, tmp_path / "run"))
    west = load_scene(cfg.data.scenes[0], cfg.data, tile=32)
    east = load_scene(cfg.data.scenes[1], cfg.data, west.info.band_names, tile=32)
    assert west.info.crs.to_epsg() == 32631 and east.info.crs.to_epsg() == 32632
    assert east.info.band_names == west.info.band_names == ["blue", "green", "red"]
    assert (east.width, east.height) == (SIZE, SIZE)  # the finest band's grid (red came at 20 m)
    for scene, name in ((west, "west"), (east, "east")):
        _, lab, _ = scene.read(0, 0, SIZE, SIZE)
        assert np.array_equal(lab, _expected(name)), name  # the EPSG:4326 polygons land on each grid
    mean, _ = training_stats([west, east], seed=0)
    pooled = []
    for s in (west, east):
        for r0, r1, c0, c1 in s.split.cells(TRAIN):
            img, _, inv = s.read(r0, c0, r1 - r0, c1 - c0)
            pooled.append(img.reshape(3, -1)[:, ~inv.reshape(-1)].astype(float))
    assert np.allclose(mean, np.concatenate(pooled, 1).mean(1), rtol=1e-5)
    one = training_stats([west], seed=0)[0]
    assert not np.allclose(mean, one)  # both scenes count
    ds = RandomWindows([west, east], 32, 50, mean, np.ones(3), 255, seed=0)
    drawn = {ds._position(np.random.default_rng(i))[0] for i in range(50)}
    assert drawn == {0, 1}


def test_training_runs_over_both_zones_split_by_scene(world: dict[str, Path], tmp_path: Path) -> None:
    d = _config(world, tmp_path / "run")
    d["data"]["scenes"][0]["split"] = "train"
    d["data"]["scenes"][1]["split"] = "val"
    result = train(parse_config(d), log=lambda _m: None, progress=False)
    assert result.best_checkpoint.is_dir() and 0.0 <= result.best_miou <= 1.0
    d = _config(world, tmp_path / "blocks", split_mode="blocks", block_size=32, val_fraction=0.3)
    assert train(parse_config(d), log=lambda _m: None, progress=False).best_checkpoint.is_dir()
