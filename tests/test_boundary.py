"""Tests for rs_vit.evaluate.boundary (boundary F1 with a pixel tolerance)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy import ndimage

from rs_vit.evaluate import BoundaryF1, boundary_f1, boundary_mask, required_halo


def square(shift: int = 0, size: int = 12) -> np.ndarray:
    """Background 0 with a 5 x 5 square of class 1 at rows 3..7, cols 3+shift..7+shift."""
    labels = np.zeros((size, size), dtype=np.int64)
    labels[3:8, 3 + shift : 8 + shift] = 1
    return labels


def blobs(shape: tuple[int, int], classes: int, seed: int, sigma: float = 4.0) -> np.ndarray:
    """A random map of smooth blobs: argmax over smoothed noise per class."""
    noise = np.random.default_rng(seed).standard_normal((*shape, classes))
    return ndimage.gaussian_filter(noise, (sigma, sigma, 0)).argmax(axis=-1)


def test_boundary_mask_square() -> None:
    b = boundary_mask(square())
    inner = b & (square() == 1)
    outer = b & (square() == 0)
    assert inner.sum() == 16  # ring of the 5 x 5 square
    assert outer.sum() == 20  # 4-neighbours outside, corners excluded
    assert not inner[4:7, 4:7].any()
    b8 = boundary_mask(square(), connectivity=8)
    assert (b8 & (square() == 0)).sum() == 24  # corners touch diagonally


def test_identical_masks_score_one() -> None:
    labels = blobs((40, 40), 3, seed=1)
    result = boundary_f1(labels, labels, 3, tolerance=0)
    assert result["mean_f1"] == 1.0
    assert result["mean_classes"] == [0, 1, 2]
    for e in result["per_class"]:
        assert e["precision"] == e["recall"] == e["f1"] == 1.0


def test_shifted_square() -> None:
    # Tolerance 1: every boundary pixel of the shifted square is 1 px from its counterpart.
    result = boundary_f1(square(shift=1), square(), 2, tolerance=1)
    assert result["mean_f1"] == 1.0

    # Tolerance 0, by hand. Class 1 (inner rings of 16 px): the reference ring is rows 3 and 7
    # at cols 3..7 plus cols 3 and 7 at rows 4..6; the shifted one rows 3, 7 at cols 4..8 plus
    # cols 4, 8 at rows 4..6. Shared: rows 3 and 7 at cols 4..7 = 8 px -> P = R = 8/16.
    # Class 0 (outer 4-neighbours, 20 px): reference rows 2, 8 at cols 3..7 and cols 2, 8 at
    # rows 3..7; shifted rows 2, 8 at cols 4..8 and cols 3, 9 at rows 3..7. Shared: rows 2 and
    # 8 at cols 4..7 = 8 px -> P = R = 8/20.
    result = boundary_f1(square(shift=1), square(), 2, tolerance=0)
    c0, c1 = result["per_class"]
    assert (c1["pred_boundary"], c1["ref_boundary"]) == (16, 16)
    assert (c0["pred_boundary"], c0["ref_boundary"]) == (20, 20)
    assert c1["precision"] == c1["recall"] == pytest.approx(float(Fraction(8, 16)))
    assert c1["f1"] == pytest.approx(0.5)
    assert c0["precision"] == c0["recall"] == pytest.approx(float(Fraction(8, 20)))
    assert c0["f1"] == pytest.approx(0.4)
    assert result["mean_f1"] == pytest.approx(0.45)


def test_fractional_tolerance_includes_diagonals() -> None:
    # Shift by one row and one column: corresponding pixels are sqrt(2) apart.
    shifted = np.zeros((12, 12), dtype=np.int64)
    shifted[4:9, 4:9] = 1
    assert boundary_f1(shifted, square(), 2, tolerance=1.5)["mean_f1"] == 1.0
    assert boundary_f1(shifted, square(), 2, tolerance=1.0)["mean_f1"] < 1.0


def test_prediction_without_boundary_scores_zero() -> None:
    result = boundary_f1(np.zeros((12, 12), dtype=np.int64), square(), 2, tolerance=2)
    for e in result["per_class"]:
        assert e["pred_boundary"] == 0
        assert e["precision"] is None
        assert e["recall"] == 0.0
        assert e["f1"] == 0.0
    assert result["mean_f1"] == 0.0


def test_reference_without_boundary() -> None:
    # Boundaries only in the prediction: F1 0 per class, but no class enters the mean.
    result = boundary_f1(square(), np.zeros((12, 12), dtype=np.int64), 2, tolerance=2)
    assert result["per_class"][1]["f1"] == 0.0
    assert result["mean_classes"] == []
    assert result["mean_f1"] is None


def test_ignored_region_does_not_create_boundaries() -> None:
    target = np.zeros((12, 12), dtype=np.int64)
    target[3:8, 3:8] = 255  # unlabelled hole
    pred = square()  # predicts class 1 exactly in the hole
    result = boundary_f1(pred, target, 2, tolerance=0, ignore_index=255)
    assert all(e["pred_boundary"] == 0 and e["ref_boundary"] == 0 for e in result["per_class"])
    assert result["mean_f1"] is None

    # Same with a valid mask (nodata) instead of an ignore index.
    valid = np.ones((12, 12), dtype=bool)
    valid[3:8, 3:8] = False
    result = boundary_f1(pred, np.zeros((12, 12), dtype=np.int64), 2, 0, valid=valid)
    assert all(e["pred_boundary"] == 0 and e["ref_boundary"] == 0 for e in result["per_class"])

    # A real boundary next to an ignored region is still evaluated.
    target = square()
    target[:, 9:] = 255
    pred = square()
    pred[:, 9:] = 1
    result = boundary_f1(pred, target, 2, tolerance=0, ignore_index=255)
    assert result["mean_f1"] == 1.0
    assert result["per_class"][1]["ref_boundary"] == 16


def test_boundary_mask_ignores_invalid_neighbours() -> None:
    labels = np.array([[0, 0, 1], [0, 0, 1]])
    valid = np.array([[True, True, False], [True, True, False]])
    assert not boundary_mask(labels, valid).any()
    assert boundary_mask(labels).sum() == 4


@pytest.mark.parametrize(("tolerance", "connectivity"), [(0, 4), (1.5, 4), (2, 8), (3, 4)])
def test_halo_core_streaming_equals_whole_image(tolerance: float, connectivity: int) -> None:
    shape = (70, 53)
    target = blobs(shape, 4, seed=2)
    pred = blobs(shape, 4, seed=3)
    target[np.random.default_rng(4).random(shape) < 0.01] = 255
    valid = np.ones(shape, dtype=bool)
    valid[30:40, 10:25] = False

    whole = BoundaryF1(4, tolerance, ignore_index=255, connectivity=connectivity)
    whole.update(pred, target, valid)

    tiled = BoundaryF1(4, tolerance, ignore_index=255, connectivity=connectivity)
    halo = required_halo(tolerance)
    assert halo == tiled.halo
    tile = 16
    for r in range(0, shape[0], tile):
        for c in range(0, shape[1], tile):
            r0, c0 = max(r - halo, 0), max(c - halo, 0)
            r1, c1 = min(r + tile + halo, shape[0]), min(c + tile + halo, shape[1])
            window = np.s_[r0:r1, c0:c1]
            core = np.s_[r - r0 : min(r + tile, r1) - r0, c - c0 : min(c + tile, c1) - c0]
            tiled.update(pred[window], target[window], valid[window], core=core)

    assert whole.ref_total.sum() > 100
    for key in ("pred_total", "pred_matched", "ref_total", "ref_matched"):
        assert np.array_equal(getattr(tiled, key), getattr(whole, key)), key
    assert tiled.compute() == whole.compute()


def test_merge_and_dict_round_trip() -> None:
    a, b = BoundaryF1(2, 1), BoundaryF1(2, 1)
    a.update(square(1), square())
    b.update(square(), square())
    merged = BoundaryF1.from_dict(a.merge(b).to_dict())
    assert merged.pred_total.tolist() == [40, 32]
    assert merged.compute()["mean_f1"] == 1.0
    with pytest.raises(ValueError):
        a.merge(BoundaryF1(2, 2))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        BoundaryF1(2, tolerance=-1)
    with pytest.raises(ValueError, match="connectivity"):
        BoundaryF1(2, connectivity=6)
    with pytest.raises(ValueError, match="2-D"):
        BoundaryF1(2).update(np.zeros(5, int), np.zeros(5, int))
    with pytest.raises(ValueError, match="9"):
        BoundaryF1(2).update(np.zeros((3, 3), int), np.full((3, 3), 9))
