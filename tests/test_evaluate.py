"""rs-vit evaluate: raster-level metrics against hand-computed confusion matrices, row
restriction, error maps, per-window accuracy, vector references with reprojection, the CLI,
and a checkpoint run over a validation split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from rs_vit.cli import app
from rs_vit.errors import ConfigError, InputError, OutputError
from rs_vit.evaluate.errormap import CORRECT, IGNORED, WRONG, error_codes
from rs_vit.evaluate.evaluator import evaluate_checkpoint, evaluate_mask
from tests._helpers_evaluate import CLASSES, CRS_UTM, TRANSFORM, label_map, make_scene, write_mask

runner = CliRunner()
NAMES = [c["name"] for c in CLASSES]


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """A 4x4 prediction (nodata 255) and reference (255 = no label, 9 = extra ignore value)."""
    pred = np.array([[0, 0, 1, 1],
                     [0, 1, 1, 255],
                     [2, 2, 1, 1],
                     [2, 0, 0, 1]])
    ref = np.array([[0, 0, 1, 1],
                    [0, 0, 1, 1],
                    [2, 2, 2, 255],
                    [9, 0, 1, 1]])
    return (write_mask(tmp_path / "pred.tif", pred, names=NAMES),
            write_mask(tmp_path / "ref.tif", ref, nodata=255))


def test_confusion_matrix_by_hand(pair):
    pred, ref = pair
    m = evaluate_mask(pred, ref, ignore_values=[9], tolerance=1)
    # evaluated: 16 px - pred nodata (1,3) - ref nodata (2,3) - ref 9 (3,0) = 13
    # ref 0 at (0,0)(0,1)(1,0)(1,1)(3,1): preds 0,0,0,1,0 -> [4,1,0]
    # ref 1 at (0,2)(0,3)(1,2)(3,2)(3,3) ((1,3) is unpredicted): preds 1,1,1,0,1 -> [1,4,0]
    # ref 2 at (2,0)(2,1)(2,2): preds 2,2,1 -> [0,1,2]
    expected = [[4, 1, 0], [1, 4, 0], [0, 1, 2]]
    assert m["confusion_matrix"] == expected
    assert m["pixels"] == 13
    assert m["unpredicted_reference_pixels"] == 1  # (1,3): labelled 1, predicted nodata
    assert m["overall_accuracy"] == pytest.approx(10 / 13)
    iou = [4 / (5 + 5 - 4), 4 / (5 + 6 - 4), 2 / (3 + 2 - 2)]
    assert [c["iou"] for c in m["per_class"]] == pytest.approx(iou)
    assert m["miou"] == pytest.approx(np.mean(iou))
    assert m["fwiou"] == pytest.approx((5 * iou[0] + 5 * iou[1] + 3 * iou[2]) / 13)
    assert m["per_class"][2]["precision"] == pytest.approx(1.0)
    assert m["per_class"][2]["recall"] == pytest.approx(2 / 3)
    assert m["class_names"] == NAMES  # read from the mask's tags
    assert m["boundary"]["tolerance"] == 1


def test_unknown_reference_value_is_refused(pair):
    pred, ref = pair
    with pytest.raises(InputError, match="9"):
        evaluate_mask(pred, ref)  # 9 is neither a class nor ignored


def test_rows_restriction(pair):
    pred, ref = pair
    m = evaluate_mask(pred, ref, ignore_values=[9], rows=(2, 4))
    # rows 2-3: ref 2,2,2,(255) / (9),0,1,1 vs pred 2,2,1,1 / 2,0,0,1
    assert m["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 1, 2]]
    assert m["rows"] == [2, 4]
    with pytest.raises(ConfigError, match="rows"):
        evaluate_mask(pred, ref, ignore_values=[9], rows=(3, 9))


def test_error_map_values_and_grid(pair, tmp_path: Path):
    pred, ref = pair
    out = tmp_path / "err.tif"
    m = evaluate_mask(pred, ref, ignore_values=[9], rows=(1, 4), error_map=out)
    assert m["error_map"] == str(out)
    with rasterio.open(out) as src, rasterio.open(pred) as p:
        codes = src.read(1)
        assert src.transform == p.transform and src.crs == p.crs and src.shape == p.shape
        assert src.dtypes[0] == "uint8" and src.nodata == IGNORED
        cmap = src.colormap(1)
        assert cmap[CORRECT][:3] == (46, 160, 67) and cmap[WRONG][:3] == (214, 39, 40)
    C, X, I = CORRECT, WRONG, IGNORED
    assert codes.tolist() == [[I, I, I, I],      # outside rows
                              [C, X, C, I],      # pred nodata at (1,3)
                              [C, C, X, I],      # ref nodata at (2,3)
                              [I, C, X, C]]      # ref 9 ignored at (3,0)
    assert (codes == C).sum() + (codes == X).sum() == m["pixels"]
    with pytest.raises(OutputError, match="exists"):
        evaluate_mask(pred, ref, ignore_values=[9], error_map=out, overwrite=False)


def test_error_codes_match_confusion_matrix():
    rng = np.random.default_rng(1)
    p = rng.integers(0, 4, (20, 20))
    t = rng.integers(0, 3, (20, 20))
    t[0] = 255
    codes = error_codes(p, t, 3, ignore_index=255)
    evaluated = (t != 255) & (p < 3)
    assert ((codes > 0) == evaluated).all()
    assert ((codes == CORRECT) == (evaluated & (p == t))).all()


def test_per_window_stats(tmp_path: Path):
    ref = label_map(48, 64)
    pred = ref.copy()
    pred[:16, 16:32] = 2  # one 16-px window entirely wrong (it is land)
    p = write_mask(tmp_path / "p.tif", pred, names=NAMES)
    r = write_mask(tmp_path / "r.tif", ref)
    m = evaluate_mask(p, r, per_window=16, block_rows=20)
    wins = {(w["row"], w["col"]): w for w in m["windows"]}
    assert len(wins) == 3 * 4
    assert wins[(0, 16)]["accuracy"] == 0.0 and wins[(0, 16)]["pixels"] == 256
    assert wins[(0, 0)]["accuracy"] == 1.0 and wins[(0, 0)]["miou"] == 1.0
    assert sum(w["pixels"] for w in m["windows"]) == m["pixels"]


def test_vector_reference_is_reprojected(tmp_path: Path):
    gpd = pytest.importorskip("geopandas")
    from shapely.geometry import box

    lab = label_map(48, 64)
    pred = write_mask(tmp_path / "pred.tif", lab, names=NAMES)
    x0, y0 = TRANSFORM.c, TRANSFORM.f

    def pbox(c0, r0, c1, r1):  # pixel box -> UTM polygon
        return box(x0 + 10 * c0, y0 - 10 * r1, x0 + 10 * c1, y0 - 10 * r0)

    gdf = gpd.GeoDataFrame(
        {"class_id": [0, 1, 2]},
        geometry=[pbox(0, 0, 16, 48), pbox(16, 0, 64, 48), pbox(40, 12, 56, 28)], crs=CRS_UTM,
    )
    gdf.to_crs(4326).to_file(tmp_path / "ref_wgs84.gpkg")  # another CRS: must be reprojected
    m = evaluate_mask(pred, tmp_path / "ref_wgs84.gpkg")
    assert m["pixels"] == 48 * 64
    assert m["overall_accuracy"] == 1.0 and m["boundary"]["mean_f1"] == 1.0
    # the built square drawn 2 px to the right: 14 of 18 columns overlap
    shifted = gdf.copy()
    shifted.loc[2, "geometry"] = pbox(42, 12, 58, 28)
    shifted.to_crs(3857).to_file(tmp_path / "ref_shift.gpkg")
    m2 = evaluate_mask(pred, tmp_path / "ref_shift.gpkg")
    assert m2["per_class"][2]["iou"] == pytest.approx(14 / 18)
    assert m2["boundary"]["per_class"][2]["f1"] == 1.0  # a 2 px shift is within the 2 px tolerance
    m3 = evaluate_mask(pred, tmp_path / "ref_shift.gpkg", tolerance=1)
    assert m3["boundary"]["per_class"][2]["f1"] < 1.0  # but not within 1 px


def test_cli_outputs(pair, tmp_path: Path):
    pred, ref = pair
    js, png = tmp_path / "m.json", tmp_path / "cm.png"
    res = runner.invoke(app, ["evaluate", str(pred), str(ref), "--ignore-values", "9", "--json", str(js),
                              "--plot", str(png), "--per-window", "--window-size", "2"])
    assert res.exit_code == 0, res.output
    assert "mIoU over 3 classes present in the reference" in res.output
    assert "Boundary F1 @ 2 px" in res.output
    data = json.loads(js.read_text())
    for key in ("confusion_matrix", "per_class", "miou", "fwiou", "overall_accuracy", "boundary",
                "pixels", "windows", "error_map"):
        assert key in data
    assert png.stat().st_size > 1000
    assert (tmp_path / "pred_errors.tif").is_file()
    assert (tmp_path / "pred_windows.csv").read_text().startswith("row,col,height,width,pixels")
    bad = runner.invoke(app, ["evaluate", str(pred)])
    assert bad.exit_code == 2 and "REFERENCE" in bad.output


@pytest.mark.slow
def test_checkpoint_on_validation_split(tmp_path: Path):
    from rs_vit.config import load_config
    from rs_vit.train.loop import train

    paths = make_scene(tmp_path / "d")
    cfg = load_config(None, {
        "data.scenes": [{"image": str(paths["scene"]), "labels": str(paths["labels"])}],
        "data.classes": CLASSES, "data.val_fraction": 0.25, "model.name": "unet_resnet18",
        "train.epochs": 1, "train.steps_per_epoch": 2, "train.batch_size": 2, "train.tile_size": 32,
        "train.out_dir": str(tmp_path / "run"), "train.plots": False, "train.tensorboard": False,
    })
    train(cfg, log=lambda s: None, progress=False)
    m = evaluate_checkpoint(tmp_path / "run" / "best", overlap=0.5, error_map_dir=tmp_path / "err",
                            per_window=16)
    assert m["scenes"][0]["areas"] == [[36, 48, 0, 64]]  # the bottom quarter of the rows
    assert m["pixels"] == 12 * 64  # the validation rows; no nodata there
    with rasterio.open(tmp_path / "err" / "scene_errors.tif") as src:
        codes = src.read(1)
    assert (codes[:36] == IGNORED).all() and (codes[36:] > 0).all()
    assert int((codes == CORRECT).sum()) == int(np.trace(np.array(m["confusion_matrix"])))
    res = runner.invoke(app, ["evaluate", "--checkpoint", str(tmp_path / "run" / "best"),
                              "--json", str(tmp_path / "v.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "v.json").read_text())["pixels"] == 12 * 64


@pytest.mark.real_data
def test_real_sen1floods11_labels(shared_data: Path, tmp_path: Path):
    """Real int16 labels with -1 = no label: those pixels are excluded, a 1-px shift is scored."""
    ref = shared_data / "sen1floods11" / "Spain_7370579_LabelHand.tif"
    if not ref.is_file():
        pytest.skip(f"{ref} not found")
    with rasterio.open(ref) as src:
        lab, profile = src.read(1), src.profile
    # as a prediction, -1 (no class) must be declared nodata: undeclared values outside the
    # classes are refused (a scene passed by mistake)
    with pytest.raises(InputError, match="Spain_7370579_LabelHand.tif: holds value.*-1.*a_nodata"):
        evaluate_mask(ref, ref, class_names=["not_water", "water"], ignore_values=[-1])
    profile.update(nodata=-1)
    with rasterio.open(tmp_path / "same.tif", "w", **profile) as dst:
        dst.write(lab, 1)
    m = evaluate_mask(tmp_path / "same.tif", ref, class_names=["not_water", "water"], ignore_values=[-1])
    assert m["pixels"] == 512 * 512 - 99 and m["overall_accuracy"] == 1.0
    assert m["boundary"]["mean_f1"] == 1.0
    shifted = np.full_like(lab, -1)
    shifted[:, 1:] = lab[:, :-1]  # the water one pixel to the east
    with rasterio.open(tmp_path / "shifted.tif", "w", **profile) as dst:
        dst.write(shifted, 1)
    m1 = evaluate_mask(tmp_path / "shifted.tif", ref, class_names=["not_water", "water"],
                       ignore_values=[-1], tolerance=1)
    # within 1 px: only boundary pixels next to the (shifted) unlabelled pixels can miss
    assert m1["overall_accuracy"] < 0.97 and m1["boundary"]["mean_f1"] > 0.99
    m0 = evaluate_mask(tmp_path / "shifted.tif", ref, class_names=["not_water", "water"],
                       ignore_values=[-1], tolerance=0)
    assert m0["boundary"]["mean_f1"] < 0.9
