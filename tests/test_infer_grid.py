"""Window grid and blend weights: coverage, snapping, tiny scenes, tile validation."""

from __future__ import annotations

import numpy as np
import pytest

from rs_vit.errors import ConfigError, ModelError
from rs_vit.infer.blend import BLENDS, FLOOR, blend_profile, blend_weights
from rs_vit.io.windows import count_windows, make_grid, overlap_pixels, window_starts
from rs_vit.models.registry import check_tile


@pytest.mark.parametrize("h,w,tile,overlap", [
    (64, 48, 32, 0.5), (100, 37, 32, 0.25), (513, 1000, 256, 0.5), (96, 96, 32, 0.0),
    (70, 130, 64, 16), (33, 33, 32, 0.75), (5, 200, 32, 0.5), (1, 1, 32, 0.0),
])
def test_grid_covers_every_pixel_and_snaps_inside(h: int, w: int, tile: int, overlap: float) -> None:
    grid = make_grid(h, w, tile, overlap)
    cover = np.zeros((h, w), dtype=np.int32)
    stride = tile - overlap_pixels(tile, overlap)
    for row in grid:
        assert len({r for r, _ in row}) == 1
        for r, c in row:
            assert r >= 0 and c >= 0
            assert r + min(tile, h) <= h and c + min(tile, w) <= w  # windows lie inside the scene
            cover[r: r + tile, c: c + tile] += 1
    assert cover.min() >= 1, "a pixel is not covered"
    rows = [row[0][0] for row in grid]
    cols = [c for _, c in grid[0]]
    for starts, length in ((rows, h), (cols, w)):
        assert starts[0] == 0
        assert starts == sorted(set(starts))
        assert all(b - a <= stride for a, b in zip(starts, starts[1:]))  # never a gap
        assert starts[-1] + min(tile, length) == length  # last window snapped to the edge
    assert count_windows(h, w, tile, overlap) == sum(len(r) for r in grid)


def test_no_overlap_grid_covers_each_pixel_exactly_once_when_it_divides() -> None:
    grid = make_grid(96, 64, 32, 0.0)
    cover = np.zeros((96, 64), dtype=np.int32)
    for row in grid:
        for r, c in row:
            cover[r: r + 32, c: c + 32] += 1
    assert (cover == 1).all()


def test_window_starts_small_and_exact() -> None:
    assert window_starts(10, 32, 16) == [0]
    assert window_starts(32, 32, 16) == [0]
    assert window_starts(48, 32, 16) == [0, 16]
    assert window_starts(50, 32, 16) == [0, 16, 18]


def test_overlap_fraction_and_pixels() -> None:
    assert overlap_pixels(256, 0.5) == 128
    assert overlap_pixels(256, 0.25) == 64
    assert overlap_pixels(256, 32) == 32
    assert overlap_pixels(256, 0) == 0
    with pytest.raises(ConfigError, match="no stride"):
        overlap_pixels(256, 256)
    with pytest.raises(ConfigError, match=">= 0"):
        overlap_pixels(256, -0.1)


def test_tile_validation_names_nearest_sizes() -> None:
    check_tile("segformer_b0", 512)
    with pytest.raises(ModelError, match="480 or 512"):
        check_tile("segformer_b0", 500)
    check_tile("foreign_model", 40, tile_multiple=8)
    with pytest.raises(ModelError, match="40 or 48"):
        check_tile("foreign_model", 42, tile_multiple=8)
    with pytest.raises(ModelError, match="224"):
        check_tile("foreign_fixed", 256, fixed_tile=224)


@pytest.mark.parametrize("kind", BLENDS)
def test_blend_weights_positive_floor_and_symmetric(kind: str) -> None:
    p = blend_profile(64, kind, overlap=32)
    assert p.dtype == np.float32 and p.shape == (64,)
    assert p.min() >= FLOOR * 0.999  # scene-edge pixels always keep some weight
    assert p.max() <= 1.0 + 1e-6
    np.testing.assert_allclose(p, p[::-1], atol=1e-6)
    w = blend_weights(64, kind, overlap=32)
    np.testing.assert_allclose(w, np.outer(p, p), rtol=1e-6)
    if kind not in ("uniform",):
        assert p[32] > p[0]  # centre weighs more than the border


def test_unknown_blend() -> None:
    with pytest.raises(ConfigError, match="hann"):
        blend_profile(32, "cosine")


def test_old_infer_grid_names_still_import() -> None:
    """``rs_vit.infer.grid`` re-exports the moved names for one release (docs/changelog.md)."""
    from rs_vit.infer import grid

    assert (grid.make_grid, grid.count_windows, grid.overlap_pixels, grid.window_starts, grid.check_tile) == (
        make_grid, count_windows, overlap_pixels, window_starts, check_tile)
    with pytest.raises(AttributeError):
        grid.no_such_name  # noqa: B018
