"""Serve the windows of a grid from block-aligned reads, decoding every block of the file once.

Overlapping windows share pixels, and a window rarely lines up with the file's compressed blocks
(TIFF tiles or strips): reading each window — or each row of windows as a strip — decodes the
blocks on its border again for the next window or row. With 512 px blocks and 512 px windows
at 25 % overlap that is about twice the decoding work, and decoding is most of what reading a
DEFLATE GeoTIFF costs. GDAL's block cache does not help here: multi-block reads of
pixel-interleaved GeoTIFFs decode straight into the caller's buffer.

So the reader reads *units*: rectangles aligned to the block grid (several blocks wide, so one
call decodes several blocks with ``GDAL_NUM_THREADS``). Each unit is read when the first window
needs it, cut down to the rows later windows still need as soon as the current row of windows
has passed it, and dropped after the last window (in grid order) that uses it — all known in
advance. Memory: about the overlap rows across the scene plus the units under the current
window, of the scene's data type.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.windows import Window

from rs_vit.io.raster import gdal_mask_kind, invalid_mask, masked_pixels, read_window


@dataclass
class WindowData:
    """One window's pixels: ``data`` ``(C, h, w)`` in the scene's dtype and ``invalid`` ``(h, w)``."""

    row: int
    col: int
    data: np.ndarray
    invalid: np.ndarray


def _unit_size(block: int, extent: int, tile: int, target: int, *, whole_ok: bool) -> int:
    """A multiple of ``block`` near ``target`` (at least one block). Blocks much larger than a
    tile are not aligned to (``max(tile, target)`` is used: bounded memory, at the price of
    decoding such blocks more than once) — except, with ``whole_ok``, a block spanning the whole
    extent (full-width strips: any read decodes whole strips anyway)."""
    if whole_ok and block >= extent:
        return extent
    if block > 2 * max(tile, target):
        return min(extent, max(tile, target))
    return min(extent, block * max(1, target // block))


class UnitReader:
    """Windows of ``grid`` (rows of ``(row, col)`` offsets, in order) from block-aligned units.

    Args:
        src: an open raster.
        indexes: 0-based band indexes to read, in model order.
        nodata: value marking invalid pixels when every band has it (NaN/inf are always invalid,
            and so are pixels the file's GDAL mask — alpha band, internal or ``.msk`` mask — masks).
        grid: the window grid (:func:`rs_vit.io.windows.make_grid`).
        tile: window size; windows are clipped to the scene (``h, w <= tile``).
        max_unit_width: widest unit in pixels (wider blocks are used as they are).
        unit_height: rows per unit when blocks are smaller (e.g. one-row strips).
    """

    def __init__(self, src: rasterio.DatasetReader, indexes: Sequence[int], nodata: float | None,
                 grid: list[list[tuple[int, int]]], tile: int, *, max_unit_width: int = 2048,
                 unit_height: int = 256) -> None:
        self.src, self.indexes, self.nodata, self.tile = src, list(indexes), nodata, tile
        self.mask_kind = gdal_mask_kind(src)
        H, W = src.height, src.width
        bh, bw = src.block_shapes[0] if src.block_shapes else (1, W)
        self.uh = _unit_size(bh, H, tile, unit_height, whole_ok=False)
        self.uw = _unit_size(bw, W, tile, max_unit_width, whole_ok=True)
        self.windows = [(r, c) for row in grid for r, c in row]
        # for each unit, the windows that use it (in order): it is dropped after the last one,
        # and cropped to the rows the next one needs in between
        self.users: dict[tuple[int, int], list[int]] = {}
        for k, (r, c) in enumerate(self.windows):
            for key in self._units(r, c):
                self.users.setdefault(key, []).append(k)
        self._next = dict.fromkeys(self.users, 0)
        self.units: dict[tuple[int, int], tuple[int, np.ndarray, np.ndarray]] = {}  # top row, data, invalid
        self.decoded_pixels = 0  # pixels read from the file, for tests and benchmarks
        self.held_bytes = self.peak_bytes = 0  # decoded pixels held, for tests and benchmarks

    def _units(self, r: int, c: int) -> Iterator[tuple[int, int]]:
        h = min(self.tile, self.src.height - r)
        w = min(self.tile, self.src.width - c)
        for i in range(r // self.uh, (r + h - 1) // self.uh + 1):
            for j in range(c // self.uw, (c + w - 1) // self.uw + 1):
                yield i, j

    def _unit(self, i: int, j: int) -> tuple[int, np.ndarray, np.ndarray]:
        got = self.units.get((i, j))
        if got is None:
            r0, c0 = i * self.uh, j * self.uw
            win = Window(c0, r0, min(self.uw, self.src.width - c0), min(self.uh, self.src.height - r0))
            data = read_window(self.src, win, self.indexes)
            self.decoded_pixels += int(win.width * win.height)
            masked = masked_pixels(self.src, win, self.indexes, kind=self.mask_kind)
            got = self.units[(i, j)] = (r0, data, invalid_mask(data, self.nodata, masked))
            self._hold(data.nbytes)
        return got

    def _hold(self, nbytes: int) -> None:
        self.held_bytes += nbytes
        self.peak_bytes = max(self.peak_bytes, self.held_bytes)

    def _release(self, key: tuple[int, int], k: int) -> None:
        """After window ``k``: drop unit ``key`` if no later window uses it, else keep only the
        rows from the next user's top row down (later windows never reach higher)."""
        users, n = self.users[key], self._next[key] + 1
        self._next[key] = n
        top, data, inv = self.units[key]
        if n == len(users):
            del self.units[key]
            self._hold(-data.nbytes)
            return
        cut = self.windows[users[n]][0] - top
        if cut > 0:
            kept = data[:, cut:].copy()
            self.units[key] = (top + cut, kept, inv[cut:].copy())
            self._hold(kept.nbytes - data.nbytes)

    def __iter__(self) -> Iterator[WindowData]:
        T = self.tile
        for k, (r, c) in enumerate(self.windows):
            h, w = min(T, self.src.height - r), min(T, self.src.width - c)
            keys = list(self._units(r, c))
            if len(keys) == 1:  # inside one unit: a view, no copy
                top, data, inv = self._unit(*keys[0])
                c0 = c - keys[0][1] * self.uw
                out = data[:, r - top:r - top + h, c0:c0 + w]
                oinv = inv[r - top:r - top + h, c0:c0 + w]
            else:
                out = oinv = None
                for i, j in keys:
                    top, data, inv = self._unit(i, j)
                    if out is None:
                        out = np.empty((data.shape[0], h, w), dtype=data.dtype)
                        oinv = np.empty((h, w), dtype=bool)
                    # the part of unit (i, j) inside the window, in window and unit coordinates
                    y0, y1 = max(r, i * self.uh), min(r + h, (i + 1) * self.uh)
                    x0, x1 = max(c, j * self.uw), min(c + w, (j + 1) * self.uw)
                    ux = j * self.uw
                    out[:, y0 - r:y1 - r, x0 - c:x1 - c] = data[:, y0 - top:y1 - top, x0 - ux:x1 - ux]
                    oinv[y0 - r:y1 - r, x0 - c:x1 - c] = inv[y0 - top:y1 - top, x0 - ux:x1 - ux]
            assert out is not None and oinv is not None
            for key in keys:  # each block decoded once, its rows kept only while still needed
                self._release(key, k)
            yield WindowData(r, c, out, oinv)
