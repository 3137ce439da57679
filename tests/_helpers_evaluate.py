"""Tiny rasters for the evaluation / compare / docs tests, written with rasterio into a folder.

Used instead of tests/data when that folder is absent, so these tests run on their own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import yaml
from affine import Affine
from rasterio.crs import CRS

CRS_UTM = CRS.from_epsg(32633)
TRANSFORM = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 5_000_000.0)
BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
CLASSES = [
    {"id": 0, "name": "water", "color": [31, 119, 180]},
    {"id": 1, "name": "land", "color": [44, 160, 44]},
    {"id": 2, "name": "built", "color": [214, 39, 40]},
]


def write_mask(path: Path, arr: np.ndarray, *, nodata: int | None = 255, names: list[str] | None = None,
               transform: Affine = TRANSFORM, crs: CRS = CRS_UTM) -> Path:
    """Write a one-band uint8 class mask (optionally tagged with class names like rs-vit predict)."""
    profile = {"driver": "GTiff", "width": arr.shape[1], "height": arr.shape[0], "count": 1,
               "dtype": "uint8" if arr.min() >= 0 else "int16", "crs": crs, "transform": transform}
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr.astype(profile["dtype"]), 1)
        if names:
            dst.update_tags(rs_vit_classes=",".join(names))
    return path


def label_map(h: int = 48, w: int = 64) -> np.ndarray:
    """Three classes: water on the left, land in the middle, a built-up square on the right."""
    lab = np.ones((h, w), dtype=np.uint8)
    lab[:, : w // 4] = 0
    lab[h // 4: h // 4 + 16, w - 24: w - 8] = 2
    return lab


def make_scene(folder: Path, h: int = 48, w: int = 64, seed: int = 0) -> dict[str, Path]:
    """A 6-band uint16 scene whose classes are easy to learn, its label raster and classes.yaml.

    Returns paths under the keys ``scene``, ``labels``, ``classes``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lab = label_map(h, w)
    means = np.array([[800, 900, 700, 300, 200, 150],   # water: dark, low NIR
                      [500, 800, 600, 3500, 2000, 1000],  # land: vegetation
                      [1800, 1900, 2000, 2300, 2600, 2400]])  # built: bright
    img = means[lab].transpose(2, 0, 1) + rng.normal(0, 60, (6, h, w))
    img = np.clip(img, 1, 10000).astype(np.uint16)
    img[:, :2, :3] = 0  # a little nodata
    scene = folder / "scene.tif"
    with rasterio.open(scene, "w", driver="GTiff", width=w, height=h, count=6, dtype="uint16",
                       crs=CRS_UTM, transform=TRANSFORM, nodata=0) as dst:
        dst.write(img)
        for i, b in enumerate(BANDS, 1):
            dst.set_band_description(i, b)
    labels = write_mask(folder / "labels.tif", lab, nodata=255)
    classes = folder / "classes.yaml"
    classes.write_text(yaml.safe_dump({"classes": CLASSES}, sort_keys=False))
    return {"scene": scene, "labels": labels, "classes": classes}
