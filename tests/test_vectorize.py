"""Polygonising a mask from its file band (streamed by GDAL) equals polygonising the array."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from rs_vit.io.vectorize import mask_to_frame, vectorize_mask


def _mask(path: Path) -> Path:
    rng = np.random.default_rng(0)
    arr = (rng.random((8, 8)) * 3).astype(np.uint8).repeat(6, 0).repeat(6, 1)  # 48 x 48 blobs
    arr[:10, :12] = 255  # nodata
    with rasterio.open(path, "w", driver="GTiff", width=48, height=48, count=1, dtype="uint8", nodata=255,
                       crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10), tiled=True,
                       blockxsize=16, blockysize=16) as dst:
        dst.write(arr, 1)
    return path


def test_band_source_equals_array_and_drops_nodata(tmp_path: Path) -> None:
    path = _mask(tmp_path / "m.tif")
    names = ["a", "b", "c"]
    with rasterio.open(path) as src:
        arr = src.read(1)
        ref = mask_to_frame(arr, src.transform, src.crs, names, nodata=255)
        got = mask_to_frame(rasterio.band(src, 1), src.transform, src.crs, names, nodata=255)
    assert len(got) == len(ref) > 3
    assert sorted(got["class_id"]) == sorted(ref["class_id"])
    assert got.geometry.area.sum() == ref.geometry.area.sum() == (arr != 255).sum() * 100.0
    assert 255 not in set(got["class_id"])
    n = vectorize_mask(path, tmp_path / "v.gpkg", names)
    assert n == len(ref)
