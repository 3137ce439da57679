"""Tests for rs_vit.evaluate.metrics and rs_vit.evaluate.report (hand-computed expectations)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from rs_vit.errors import OutputError
from rs_vit.evaluate import (
    BoundaryF1,
    ConfusionMatrix,
    LabelValueError,
    compute_metrics,
    format_table,
    plot_confusion_matrix,
    write_json,
)

# A 3-class example worked out by hand.
#   reference  0 0 0 1 1 2 2 2
#   prediction 0 0 1 1 2 2 2 0
# confusion matrix (rows = reference, cols = prediction):
#   [[2, 1, 0],
#    [0, 1, 1],
#    [1, 0, 2]]
# TP = (2, 1, 2), support = (3, 2, 3), predicted = (3, 2, 3)
TARGET = np.array([0, 0, 0, 1, 1, 2, 2, 2])
PRED = np.array([0, 0, 1, 1, 2, 2, 2, 0])
CM = [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
IOU = [Fraction(2, 4), Fraction(1, 3), Fraction(2, 4)]  # TP / (support + predicted - TP)
PRECISION = [Fraction(2, 3), Fraction(1, 2), Fraction(2, 3)]
RECALL = [Fraction(2, 3), Fraction(1, 2), Fraction(2, 3)]
F1 = [Fraction(2, 3), Fraction(1, 2), Fraction(2, 3)]
MIOU = Fraction(4, 9)  # (1/2 + 1/3 + 1/2) / 3
FWIOU = Fraction(11, 24)  # 3/8 * 1/2 + 2/8 * 1/3 + 3/8 * 1/2
OA = Fraction(5, 8)
MEAN_F1 = Fraction(11, 18)
KAPPA = Fraction(3, 7)  # p_o = 5/8, p_e = (9 + 4 + 9) / 64 = 11/32 -> (9/32) / (21/32)


def approx(x: Fraction) -> object:
    return pytest.approx(float(x), abs=1e-12)


def test_confusion_matrix_hand_example() -> None:
    cm = ConfusionMatrix(3)
    cm.update(PRED, TARGET)
    assert cm.matrix.tolist() == CM
    assert cm.matrix.dtype == np.int64
    assert cm.pixels == 8


def test_compute_metrics_hand_example() -> None:
    m = compute_metrics(np.array(CM), ["water", "forest", "urban"])
    assert m["confusion_matrix"] == CM
    assert [e["name"] for e in m["per_class"]] == ["water", "forest", "urban"]
    assert [e["id"] for e in m["per_class"]] == [0, 1, 2]
    for c, e in enumerate(m["per_class"]):
        assert e["iou"] == approx(IOU[c])
        assert e["precision"] == approx(PRECISION[c])
        assert e["recall"] == approx(RECALL[c])
        assert e["f1"] == approx(F1[c])
    assert [e["support"] for e in m["per_class"]] == [3, 2, 3]
    assert [e["predicted"] for e in m["per_class"]] == [3, 2, 3]
    assert m["miou"] == approx(MIOU)
    assert m["miou_classes"] == [0, 1, 2]
    assert m["miou_all"] == approx(MIOU)
    assert m["fwiou"] == approx(FWIOU)
    assert m["overall_accuracy"] == approx(OA)
    assert m["mean_f1"] == approx(MEAN_F1)
    assert m["kappa"] == approx(KAPPA)
    assert m["pixels"] == 8
    assert m["boundary"] is None
    json.dumps(m, allow_nan=False)  # strict JSON: no NaN, only builtin types


def test_kappa_known_example() -> None:
    # Classic two-rater example: p_o = 35/50 = 0.7, p_e = (25*30 + 25*20)/2500 = 0.5 -> 0.4.
    m = compute_metrics(np.array([[20, 5], [10, 15]]))
    assert m["kappa"] == pytest.approx(0.4)
    assert m["overall_accuracy"] == pytest.approx(0.7)


def test_kappa_undefined_for_single_class() -> None:
    m = compute_metrics(np.array([[5, 0], [0, 0]]))
    assert m["kappa"] is None
    assert m["overall_accuracy"] == 1.0


def test_classes_absent_from_reference() -> None:
    # 4 classes: class 2 only predicted (never in the reference), class 3 in neither.
    target = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([0, 0, 0, 2, 1, 1])
    cm = ConfusionMatrix(4)
    cm.update(pred, target)
    m = cm.compute()
    iou0, iou1 = Fraction(3, 4), Fraction(2, 2)
    assert m["per_class"][0]["iou"] == approx(iou0)
    assert m["per_class"][1]["iou"] == approx(iou1)
    assert m["per_class"][2]["iou"] == 0.0  # predicted, not in reference
    assert m["per_class"][2]["recall"] is None and m["per_class"][2]["precision"] == 0.0
    assert m["per_class"][2]["f1"] == 0.0
    for key in ("iou", "precision", "recall", "f1"):
        assert m["per_class"][3][key] is None
    assert m["miou_classes"] == [0, 1]
    assert m["miou"] == approx((iou0 + iou1) / 2)
    assert m["miou_all_classes"] == [0, 1, 2]
    assert m["miou_all"] == approx((iou0 + iou1 + 0) / 3)
    assert m["mean_f1"] == approx((Fraction(6, 7) + 1) / 2)  # f1_0 = 2*3 / (4 + 3)
    json.dumps(m, allow_nan=False)


def test_empty_matrix_gives_none_not_nan() -> None:
    m = compute_metrics(np.zeros((3, 3), dtype=np.int64))
    assert m["miou"] is None and m["kappa"] is None and m["overall_accuracy"] is None
    assert m["pixels"] == 0
    assert all(e["iou"] is None for e in m["per_class"])
    json.dumps(m, allow_nan=False)


def test_ignore_index_and_valid_mask() -> None:
    target = np.array([[0, 1, 255], [1, 1, 0]], dtype=np.uint8)
    pred = np.array([[0, 0, 1], [1, 0, 0]], dtype=np.uint8)
    valid = np.array([[True, True, True], [True, False, True]])
    cm = ConfusionMatrix(2, ignore_index=255)
    cm.update(pred, target, valid)
    # evaluated: (0,0) 0->0, (0,1) 1->0, (1,0) 1->1, (1,2) 0->0
    assert cm.matrix.tolist() == [[2, 0], [1, 1]]


def test_prediction_outside_classes_is_skipped() -> None:
    cm = ConfusionMatrix(2)
    cm.update(np.array([0, 255, 1, -1]), np.array([0, 1, 1, 0]))
    assert cm.matrix.tolist() == [[1, 0], [0, 1]]


def test_reference_outside_classes_raises_naming_value() -> None:
    cm = ConfusionMatrix(3, ignore_index=255)
    with pytest.raises(ValueError, match="7"):
        cm.update(np.array([0, 1, 2]), np.array([0, 7, 255]))
    with pytest.raises(LabelValueError, match="255"):
        ConfusionMatrix(3).update(np.array([0, 1]), np.array([0, 255]))
    # ...but not where the pixel is masked out
    cm.update(np.array([0, 1, 2]), np.array([0, 7, 255]), valid=np.array([True, False, True]))
    assert cm.pixels == 1


def test_bad_inputs() -> None:
    cm = ConfusionMatrix(2)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        cm.update(np.zeros(3, int), np.zeros(2, int))
    with pytest.raises(TypeError, match="integer"):
        cm.update(np.zeros(3), np.zeros(3, int))
    with pytest.raises(ValueError):
        compute_metrics(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        compute_metrics(np.zeros((2, 2)), ["only-one"])


def test_streaming_equals_one_shot() -> None:
    rng = np.random.default_rng(0)
    target = rng.integers(0, 5, (64, 48))
    target[rng.random(target.shape) < 0.1] = 255
    pred = rng.integers(0, 5, (64, 48))
    valid = rng.random(target.shape) > 0.05
    one = ConfusionMatrix(5, ignore_index=255)
    one.update(pred, target, valid)

    windows = ConfusionMatrix(5, ignore_index=255)
    for r in range(0, 64, 20):
        for c in range(0, 48, 15):
            w = np.s_[r : r + 20, c : c + 15]
            windows.update(pred[w], target[w], valid[w])
    assert np.array_equal(windows.matrix, one.matrix)

    # halo windows with core slices count each pixel once
    halo = ConfusionMatrix(5, ignore_index=255)
    for r in range(0, 64, 16):
        for c in range(0, 48, 16):
            r0, c0 = max(r - 3, 0), max(c - 3, 0)
            w = np.s_[r0 : r + 19, c0 : c + 19]
            core = np.s_[r - r0 : r - r0 + 16, c - c0 : c - c0 + 16]
            halo.update(pred[w], target[w], valid[w], core=core)
    assert np.array_equal(halo.matrix, one.matrix)

    # merging per-worker accumulators, and a dict round trip
    a, b = ConfusionMatrix(5, 255), ConfusionMatrix(5, 255)
    a.update(pred[:30], target[:30], valid[:30])
    b.update(pred[30:], target[30:], valid[30:])
    merged = ConfusionMatrix.from_dict(json.loads(json.dumps(a.merge(b).to_dict())))
    assert np.array_equal(merged.matrix, one.matrix)
    with pytest.raises(ValueError):
        a.merge(ConfusionMatrix(4, 255))


def test_format_table() -> None:
    cm = ConfusionMatrix(4)
    cm.update(np.array([0, 0, 1, 2, 1]), np.array([0, 0, 1, 1, 1]))
    bf = BoundaryF1(4, tolerance=2)
    bf.update(np.zeros((4, 4), int), np.zeros((4, 4), int))
    m = compute_metrics(cm.matrix, ["water", "forest", "urban", "snow"], boundary=bf.compute())
    text = format_table(m)
    assert "mIoU over 2 classes present in the reference" in text
    assert "forest" in text and "snow" in text
    assert "Boundary F1 @ 2 px" in text
    assert "Not in the reference (left out of mIoU): urban, snow" in text
    lines = text.splitlines()
    assert len({len(line) for line in lines[:7]}) == 1  # header, rule, 4 rows, rule: fixed width


def test_write_json_atomic(tmp_path: Path) -> None:
    m = compute_metrics(np.array(CM))
    m["extra"] = {"nan": float("nan"), "np": np.float32(0.5), "arr": np.arange(3)}
    out = tmp_path / "metrics.json"
    out.write_text("old")
    assert write_json(m, out) == out
    data = json.loads(out.read_text())
    assert data["miou"] == pytest.approx(float(MIOU))
    assert data["extra"] == {"nan": None, "np": 0.5, "arr": [0, 1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left
    with pytest.raises(OutputError):
        write_json(m, tmp_path / "missing" / "metrics.json")


@pytest.mark.parametrize("normalize", ["true", None])
def test_plot_confusion_matrix(tmp_path: Path, normalize: str | None) -> None:
    cm = np.array([[50_000, 120, 0], [300, 9_000, 40], [0, 0, 0]])  # last row: no reference
    out = tmp_path / "cm.png"
    assert plot_confusion_matrix(cm, ["water", "forest", "urban"], out, normalize) == out
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5_000
    assert [p.name for p in tmp_path.iterdir()] == ["cm.png"]
    with pytest.raises(ValueError, match="normalize"):
        plot_confusion_matrix(cm, None, out, normalize="rows")  # type: ignore[arg-type]
