"""Streaming, atomic GeoTIFF / Cloud Optimised GeoTIFF writers for prediction outputs.

A :class:`RasterSink` is opened on a temporary name beside its final path, receives blocks of
rows from top to bottom, and is renamed to the final name only when everything succeeded; a
crash or Ctrl-C leaves nothing under the final name. ``cog=True`` converts the finished file
with GDAL's COG driver (tiling, overviews, compression) before the rename.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from rs_vit.errors import error_detail
from rs_vit.io.atomic import _cleanup, _write_failed, atomic_path

GEO_KEYS = ("crs", "transform", "width", "height")


def output_profile(
    scene_profile: Mapping[str, Any], *, count: int, dtype: str, nodata: float | None,
    compress: str = "deflate", block: int = 256,
) -> dict[str, Any]:
    """A GeoTIFF profile derived from the scene's: same CRS, transform and size; tiled and
    compressed (strips when the scene is smaller than one block)."""
    p = {k: scene_profile[k] for k in GEO_KEYS if k in scene_profile}
    p.update(driver="GTiff", count=count, dtype=dtype, nodata=nodata, compress=compress,
             BIGTIFF="IF_SAFER")
    if dtype in ("float32", "float64"):
        p["predictor"] = 3
    elif compress in ("deflate", "lzw", "zstd"):
        p["predictor"] = 2
    if p["width"] >= block and p["height"] >= block:
        p.update(tiled=True, blockxsize=block, blockysize=block)
    if count > 1:
        p["interleave"] = "band"
    return p


class RasterSink:
    """One output raster written row block by row block, committed atomically.

    Args:
        path: final path.
        profile: rasterio profile (see :func:`output_profile`).
        descriptions: one description per band (e.g. class names).
        colormap: a colour table for band 1 (class masks).
        tags: dataset-level metadata tags.
        band_tags: metadata tags of band 1.
        cog: convert to a Cloud Optimised GeoTIFF with overviews when closing.
        resampling: overview resampling for the COG (``nearest`` for classes, ``average`` for
            probabilities).
    """

    def __init__(
        self,
        path: str | Path,
        profile: dict[str, Any],
        *,
        descriptions: Sequence[str] | None = None,
        colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
        tags: Mapping[str, str] | None = None,
        band_tags: Mapping[str, str] | None = None,
        cog: bool = False,
        resampling: str = "nearest",
    ) -> None:
        self.path = Path(path)
        self.profile = profile
        self.descriptions = descriptions
        self.colormap = colormap
        self.tags = dict(tags or {})
        self.band_tags = dict(band_tags or {})
        self.cog = cog
        self.resampling = resampling
        self._dst: rasterio.io.DatasetWriter | None = None

    @contextlib.contextmanager
    def open(self) -> Iterator[RasterSink]:
        """Open for writing; on a clean exit the file appears under its final name."""
        with atomic_path(self.path) as tmp:
            stage = tmp.with_name(tmp.name + ".stage.tif") if self.cog else tmp
            try:
                with rasterio.open(stage, "w", **self.profile) as dst:
                    self._dst = dst
                    if self.descriptions:
                        for i, d in enumerate(self.descriptions, start=1):
                            dst.set_band_description(i, d)
                    if self.colormap:
                        dst.write_colormap(1, self.colormap)
                    if self.tags:
                        dst.update_tags(**self.tags)
                    if self.band_tags:
                        dst.update_tags(1, **self.band_tags)
                    yield self
                self._dst = None
                if self.cog:
                    rasterio.shutil.copy(
                        stage, tmp, driver="COG", COMPRESS=self.profile.get("compress", "deflate").upper(),
                        OVERVIEW_RESAMPLING=self.resampling.upper(), BLOCKSIZE=512, BIGTIFF="IF_SAFER",
                    )
            finally:
                self._dst = None
                if self.cog:
                    _cleanup(stage)

    def write(self, row0: int, data: np.ndarray) -> None:
        """Write ``data`` (``(count, n, width)`` or ``(n, width)``) at scene row ``row0``."""
        assert self._dst is not None, "RasterSink.write outside open()"
        arr = data[None] if data.ndim == 2 else data
        try:
            self._dst.write(arr, window=Window(0, row0, arr.shape[2], arr.shape[1]))
        except RasterioIOError as exc:  # blocks are flushed as GDAL's cache fills: a full disk shows here
            first = error_detail(exc)  # rasterio's own message says only 'see previous exception'
            raise _write_failed(self.path, first) from exc
