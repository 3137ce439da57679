"""Tiny seeded fixtures for the training/data tests (written into tmp_path with rasterio).

A 6-band uint16 scene (blue … swir22) whose classes are visible in the bands, a label raster on
the same grid, the same labels as polygons in another CRS (EPSG:4326), and a classes list.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

BANDS = ["blue", "green", "red", "nir", "swir16", "swir22"]
CLASSES = [
    {"id": 0, "name": "background", "color": [0, 0, 0]},
    {"id": 1, "name": "water", "color": [0, 0, 255]},
    {"id": 2, "name": "building", "color": [255, 0, 0]},
]
CRS = "EPSG:32633"
TRANSFORM = from_origin(500000.0, 4600000.0, 10.0, 10.0)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_labels(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Blocky classes: rectangles of water and buildings on background."""
    rng = np.random.default_rng(seed)
    lab = np.zeros((h, w), np.uint8)
    for k in (1, 2):
        for _ in range(max(2, h * w // 400)):
            r, c = rng.integers(0, h - 4), rng.integers(0, w - 4)
            lab[r:r + rng.integers(3, 9), c:c + rng.integers(3, 9)] = k
    return lab


def write_scene(folder: Path, h: int = 48, w: int = 64, seed: int = 0, nodata_corner: bool = True,
                name: str = "scene") -> dict[str, Path]:
    """Write ``{name}.tif`` (6 bands uint16, nodata 0), ``{name}_labels.tif`` and ``classes.yaml``."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lab = make_labels(h, w, seed)
    means = np.array([[800, 900, 1000, 3000, 2000, 1500],  # background: vegetation-ish
                      [1200, 1000, 700, 300, 200, 100],  # water: dark in NIR/SWIR
                      [1500, 1600, 1700, 1800, 2500, 2600]], float)  # buildings: bright
    img = means[lab].transpose(2, 0, 1) + rng.normal(0, 60, (6, h, w))
    img = np.clip(img, 1, 60000).astype(np.uint16)
    if nodata_corner:
        img[:, :4, :4] = 0
    paths = {"image": folder / f"{name}.tif", "labels": folder / f"{name}_labels.tif",
             "classes": folder / "classes.yaml"}
    prof = dict(driver="GTiff", width=w, height=h, count=6, dtype="uint16", crs=CRS, transform=TRANSFORM,
                nodata=0)
    with rasterio.open(paths["image"], "w", **prof) as dst:
        dst.write(img)
        for i, b in enumerate(BANDS, 1):
            dst.set_band_description(i, b)
    with rasterio.open(paths["labels"], "w", **{**prof, "count": 1, "dtype": "uint8", "nodata": 255}) as dst:
        dst.write(lab, 1)
    paths["classes"].write_text(yaml.safe_dump({"classes": CLASSES}))
    return paths


def write_vector_labels(paths: dict[str, Path], crs: str = "EPSG:4326", attribute: str = "class_id",
                        skip: tuple[int, ...] = (255,)) -> Path:
    """Polygonise the label raster (except values in ``skip``) and save it reprojected to ``crs``."""
    import geopandas as gpd
    from rasterio.features import shapes
    from shapely.geometry import shape

    with rasterio.open(paths["labels"]) as src:
        lab = src.read(1)
        geoms = [(shape(g), int(v)) for g, v in shapes(lab, transform=src.transform) if v not in skip]
    gdf = gpd.GeoDataFrame({attribute: [v for _, v in geoms]}, geometry=[g for g, _ in geoms], crs=CRS)
    out = paths["image"].with_name("labels.gpkg")
    gdf.to_crs(crs).to_file(out)
    return out


def tiny_config(paths: dict[str, Path], out_dir: Path, **train: Any) -> dict[str, Any]:
    """A config dict training SegFormer-B0 for a few steps on the tiny scene."""
    t = {"out_dir": str(out_dir), "epochs": 2, "steps_per_epoch": 3, "batch_size": 4, "tile_size": 32,
         "lr": 2e-3, "warmup_steps": 1, "precision": "bf16", "seed": 0, "plots": False}
    t.update(train)
    return {
        "data": {"scenes": [{"image": str(paths["image"]), "labels": str(paths["labels"])}],
                 "classes": CLASSES, "val_fraction": 0.3},
        "model": {"name": "segformer_b0"},
        "train": t,
    }


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Run the tiny training tests on one intra-op thread (restored afterwards): with tiny tensors,
    and with other processes on the two cores, one thread is several times faster than two."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
