"""End to end through the CLI: train one short epoch → predict → evaluate, on tiny fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from rs_vit import __version__
from rs_vit.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir: Path) -> Path:
    run = tmp_path_factory.mktemp("run") / "r"
    res = invoke(
        "train", "--image", data_dir / "tiny_scene.tif", "--labels", data_dir / "tiny_labels.tif",
        "--classes", data_dir / "classes.yaml", "--model", "unet_resnet18", "--epochs", "1",
        "--steps-per-epoch", "3", "--batch-size", "2", "--tile-size", "32", "--val-fraction", "0.3",
        "--out-dir", run, "--no-progress",
    )
    assert res.exit_code == 0, res.output
    assert "Best validation mIoU" in res.output
    return run


def test_version_and_help():
    res = invoke("--version")
    assert res.exit_code == 0 and __version__ in res.output
    for cmd in ("train", "predict", "evaluate", "models"):
        res = invoke(cmd, "--help")
        assert res.exit_code == 0, cmd
        assert "Usage" in res.output


def test_run_directory(trained: Path):
    assert (trained / "config.yaml").is_file()
    rows = (trained / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,train_loss") and len(rows) == 2
    meta = json.loads((trained / "best" / "rs_vit.json").read_text())
    assert meta["name"] == "unet_resnet18"
    assert meta["bands"] == ["blue", "green", "red", "nir", "swir16", "swir22"]
    assert len(meta["mean"]) == len(meta["std"]) == 6
    assert [c["name"] for c in meta["classes"]] and meta["tile_size"] == 32
    assert (trained / "best" / "model.safetensors").is_file()


def test_predict_keeps_georeferencing_and_nodata(trained: Path, data_dir: Path, tmp_path: Path):
    out = tmp_path / "mask.tif"
    scene = data_dir / "tiny_scene.tif"
    res = invoke("predict", scene, "--checkpoint", trained / "best", "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    with rasterio.open(scene) as src, rasterio.open(out) as dst:
        assert (dst.crs, dst.transform, dst.width, dst.height) == (src.crs, src.transform, src.width, src.height)
        assert dst.dtypes[0] == "uint8" and dst.nodata == 255
        img = src.read()
        mask = dst.read(1)
        nodata_in = np.all(img == src.nodata, axis=0)
        assert nodata_in.any()
        assert np.all(mask[nodata_in] == 255)
        assert np.all(mask[~nodata_in] < 3)
        assert dst.colormap(1)[0][:3] is not None
    # refuses to overwrite, and leaves the file as it was
    before = out.read_bytes()
    res = runner.invoke(app, ["predict", str(scene), "--checkpoint", str(trained / "best"), "--out", str(out)])
    assert res.exit_code == 2
    assert "already exists" in res.output and "--overwrite" in res.output
    assert out.read_bytes() == before


def test_evaluate_json_and_table(trained: Path, data_dir: Path, tmp_path: Path):
    out = tmp_path / "mask.tif"
    invoke("predict", data_dir / "tiny_scene.tif", "-k", trained / "best", "-o", out, "--no-progress")
    js = tmp_path / "m.json"
    res = invoke("evaluate", out, "--reference", data_dir / "tiny_labels.tif", "--json", js)
    assert res.exit_code == 0, res.output
    assert "mIoU" in res.output
    m = json.loads(js.read_text())
    for key in ("confusion_matrix", "per_class", "miou", "overall_accuracy", "fwiou", "boundary"):
        assert key in m
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (3, 3) and cm.sum() == m["pixels"] > 0
    # the same metrics against the vector labels (rasterised on the mask grid) are close
    res = invoke("evaluate", out, "--reference", data_dir / "tiny_labels.gpkg", "--json", tmp_path / "v.json")
    assert res.exit_code == 0, res.output
    mv = json.loads((tmp_path / "v.json").read_text())
    assert abs(mv["overall_accuracy"] - m["overall_accuracy"]) < 0.05


def test_bad_inputs_give_one_line_errors(trained: Path, tmp_path: Path, data_dir: Path):
    bogus = tmp_path / "not_a_raster.tif"
    bogus.write_text("hello")
    res = runner.invoke(app, ["predict", str(bogus), "-k", str(trained / "best"), "-o", str(tmp_path / "o.tif")])
    assert res.exit_code == 2
    assert "cannot be read as a raster" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "o.tif").exists()
    res = runner.invoke(app, ["predict", str(data_dir / "tiny_scene.tif"), "-k", str(tmp_path), "-o", str(tmp_path / "o.tif")])
    assert res.exit_code == 2 and "not an rs-vit checkpoint" in res.output
    res = runner.invoke(app, ["train", "--model", "segformer_b1x", "--image", str(data_dir / "tiny_scene.tif"),
                              "--labels", str(data_dir / "tiny_labels.tif"), "--classes", str(data_dir / "classes.yaml"),
                              "--out-dir", str(tmp_path / "r")])
    assert res.exit_code == 2 and "Unknown model" in res.output
