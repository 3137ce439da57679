"""The block-aligned window reader: same pixels as direct reads, each block decoded once,
units freed after their last window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.transform
from rasterio.windows import Window

from rs_vit.io.windows import make_grid
from rs_vit.infer.reader import UnitReader
from tests._helpers_infer import make_scene


@pytest.mark.parametrize(("h", "w", "block", "tile", "overlap", "unit_w"), [
    (80, 112, 16, 24, 0.5, 32),   # tiled, windows straddle blocks and units
    (80, 112, 16, 24, 0.0, 2048),  # one unit across the scene
    (50, 70, None, 16, 0.25, 32),  # striped file (one row per block): units of rows
    (20, 30, 16, 32, 0.5, 32),    # scene smaller than a tile
    (64, 64, 64, 16, 0.5, 32),    # one block for the whole scene
])
def test_windows_equal_direct_reads_and_blocks_decode_once(
        tmp_path: Path, h: int, w: int, block: int | None, tile: int, overlap: float, unit_w: int) -> None:
    scene = make_scene(tmp_path / "s.tif", h, w, nodata=0, nodata_box=(0, 5, 0, 7), block=block)
    grid = make_grid(h, w, tile, overlap)
    with rasterio.open(scene) as src:
        reader = UnitReader(src, [3, 0, 1], 0, grid, tile, max_unit_width=unit_w, unit_height=8)
        got = list(reader)
        assert [(g.row, g.col) for g in got] == [rc for row in grid for rc in row]
        for g in got:
            wh, ww = min(tile, h - g.row), min(tile, w - g.col)
            ref = src.read([4, 1, 2], window=Window(g.col, g.row, ww, wh))
            np.testing.assert_array_equal(g.data, ref)
            np.testing.assert_array_equal(g.invalid, np.all(ref == 0, axis=0))
        assert reader.decoded_pixels == h * w  # every pixel decoded once
        assert reader.units == {}  # all units freed after their last window


def test_units_are_freed_as_the_grid_advances(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "s.tif", 160, 160, nodata=None, block=16)
    grid = make_grid(160, 160, 32, 0.5)
    with rasterio.open(scene) as src:
        reader = UnitReader(src, [0], None, grid, 32, max_unit_width=16, unit_height=16)
        peak = 0
        for _ in reader:
            peak = max(peak, len(reader.units))
    # about one row of units (the next row of windows still needs it) plus the window's own
    assert peak <= 160 // 16 * 2 + 4, peak


def test_huge_blocks_do_not_make_huge_units(tmp_path: Path) -> None:
    """A file stored as one strip for the whole image: units stay a few tiles high (the strip is
    decoded more than once) instead of holding the whole scene."""
    scene = tmp_path / "one_strip.tif"
    data = (np.arange(4 * 300 * 40, dtype=np.uint16).reshape(4, 300, 40) % 5000) + 1
    with rasterio.open(scene, "w", driver="GTiff", width=40, height=300, count=4, dtype="uint16",
                       blockysize=300, compress="deflate", crs="EPSG:32633",
                       transform=rasterio.transform.from_origin(500000, 4000000, 10, 10)) as dst:
        dst.write(data)
    grid = make_grid(300, 40, 16, 0.25)
    with rasterio.open(scene) as src:
        assert src.block_shapes[0] == (300, 40)
        reader = UnitReader(src, [0, 1, 2, 3], None, grid, 16, unit_height=8)
        for g in reader:
            np.testing.assert_array_equal(g.data, data[:, g.row:g.row + 16, g.col:g.col + 16])
    assert reader.uh == 16
    assert reader.peak_bytes <= 3 * 16 * 40 * 4 * 2  # a few units of 16 rows, never the whole 300
