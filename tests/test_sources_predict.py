"""Prediction and training over imagery as it comes: a remote COG over a loopback range-request
server, per-band products through the CLI, and checkpoints moving between stacked products and
multi-band files with the same band names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from typer.testing import CliRunner

from _helpers_infer import Pointwise, make_spec
from _helpers_sources import range_server, s2_product, smooth, write_cog
from _helpers_train import one_thread  # noqa: F401  (autouse fixture)
from rs_vit.cli import app
from rs_vit.config import parse_config
from rs_vit.infer.engine import predict_scene
from rs_vit.io.sources import resolve_scene
from rs_vit.train.loop import train

BANDS = ["blue", "green", "red", "nir"]
CLASSES = [{"id": 0, "name": "dark", "color": [0, 0, 0]}, {"id": 1, "name": "bright", "color": [255, 255, 255]}]


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_prediction_over_http_equals_local_and_streams(tmp_path: Path) -> None:
    data = np.stack([smooth(200, 232, s) for s in range(4)])
    data[:, :20, :30] = 0  # nodata corner
    (tmp_path / "srv").mkdir()
    write_cog(tmp_path / "srv" / "scene.tif", data, BANDS, block=64)
    spec = make_spec(3, tile=32)
    model = Pointwise(4, 3)
    local = predict_scene(tmp_path / "srv" / "scene.tif", tmp_path / "local.tif", model=model, spec=spec, overlap=0.25)
    with range_server(tmp_path / "srv") as srv:
        remote = predict_scene(f"{srv.url}/scene.tif", tmp_path / "remote.tif", model=model, spec=spec, overlap=0.25,
                               probabilities=True)
        gets = [r for r in srv.requests if r[0] == "GET"]
        served = srv.bytes_sent
    assert remote.windows == local.windows and remote.windows_skipped == local.windows_skipped
    assert np.array_equal(_read(tmp_path / "remote.tif"), _read(tmp_path / "local.tif"))
    with rasterio.open(tmp_path / "remote.tif") as a, rasterio.open(tmp_path / "local.tif") as b:
        assert a.transform == b.transform and a.crs == b.crs and a.nodata == b.nodata
    assert gets and all(rng for _, _, rng in gets)  # range requests, never the whole file at once
    assert served <= (tmp_path / "srv" / "scene.tif").stat().st_size  # each tile fetched about once


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rs_vit.models.checkpoint import save_checkpoint
    from rs_vit.models.registry import create_model

    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "best", create_model("segformer_b0", in_channels=4,
                                                                                   num_classes=3),
                           make_spec(3, tile=32, name="segformer_b0"))


def test_cli_predicts_a_band_folder_on_the_chosen_grid(tmp_path: Path, checkpoint: Path) -> None:
    product = s2_product(tmp_path / "T31UFQ", size10=64)
    run = CliRunner().invoke
    res = run(app, ["predict", str(product), "-k", str(checkpoint), "--out-dir", str(tmp_path / "out"),
                    "--no-progress"])
    assert res.exit_code == 0, res.output
    with rasterio.open(tmp_path / "out" / "T31UFQ_mask.tif") as m:
        assert (m.width, m.height, m.res, m.crs.to_epsg()) == (64, 64, (10.0, 10.0), 32631)
    res = run(app, ["predict", str(product), "-k", str(checkpoint), "-o", str(tmp_path / "m20.tif"),
                    "--resolution", "20", "--resampling", "average", "--no-progress"])
    assert res.exit_code == 0, res.output
    with rasterio.open(tmp_path / "m20.tif") as m:
        assert (m.width, m.height, m.res) == (32, 32, (20.0, 20.0))
    res = run(app, ["predict", str(product), "-k", str(checkpoint), "-o", str(tmp_path / "bad.tif"),
                    "--resampling", "bilinar", "--no-progress"])
    assert res.exit_code != 0 and "Unknown --resampling 'bilinar'" in res.output
    # a product without a band the model needs: one line naming both lists
    for f in product.glob("*_B08.tif"):
        f.unlink()
    res = run(app, ["predict", str(product), "-k", str(checkpoint), "-o", str(tmp_path / "x.tif"), "--no-progress"])
    assert res.exit_code != 0 and "band(s) nir missing from the product" in res.output


def _labels(path: Path, image: Path) -> Path:
    """Two classes from the red band of ``image`` (a threshold at its median), on its grid."""
    with rasterio.open(image) as src:
        red = src.read(list(src.descriptions).index("red") + 1).astype(float)
        prof = dict(driver="GTiff", width=src.width, height=src.height, count=1, dtype="uint8", crs=src.crs,
                    transform=src.transform, nodata=255)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write((red > np.median(red)).astype("uint8"), 1)
    return path


def _train(image: str, labels: Path, out: Path) -> Path:
    cfg = parse_config({
        "data": {"scenes": [{"image": image, "labels": str(labels)}], "classes": CLASSES, "val_fraction": 0.3},
        "model": {"name": "segformer_b0"},
        "train": {"out_dir": str(out), "epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "tile_size": 32,
                  "precision": "bf16", "seed": 0, "plots": False, "warmup_steps": 1, "tensorboard": False},
    })
    return train(cfg, log=lambda _m: None, progress=False).best_checkpoint


def test_checkpoints_move_between_products_and_multiband_files(tmp_path: Path) -> None:
    product = s2_product(tmp_path / "product", size10=64)
    stacked = resolve_scene(product)
    multi = tmp_path / "multiband.tif"  # the same pixels as one GeoTIFF with the same band names
    with rasterio.open(stacked.path) as src:
        prof = dict(driver="GTiff", width=src.width, height=src.height, count=src.count, dtype=src.dtypes[0],
                    crs=src.crs, transform=src.transform, nodata=src.nodata)
        with rasterio.open(multi, "w", **prof) as dst:
            dst.write(src.read())
            for i, name in enumerate(src.descriptions, 1):
                dst.set_band_description(i, name)
    labels = _labels(tmp_path / "labels.tif", multi)
    on_product = _train(str(product), labels, tmp_path / "run_product")
    on_file = _train(str(multi), labels, tmp_path / "run_file")
    for ck in (on_product, on_file):
        a = predict_scene(product, tmp_path / f"{ck.parent.name}_p.tif", checkpoint=ck)
        b = predict_scene(multi, tmp_path / f"{ck.parent.name}_m.tif", checkpoint=ck)
        assert a.windows == b.windows
        assert np.array_equal(_read(a.out), _read(b.out)), ck
    with open(on_product / "rs_vit.json") as fh:
        assert '"nir"' in fh.read()


def test_cli_trains_on_a_product_at_a_chosen_resolution(tmp_path: Path) -> None:
    product = s2_product(tmp_path / "product", size10=128)
    stacked = resolve_scene(product, resolution=20)
    labels = _labels(tmp_path / "labels20.tif", stacked.path)  # labels on the 20 m grid
    (tmp_path / "classes.yaml").write_text("classes:\n" + "".join(
        f"  - {{id: {c['id']}, name: {c['name']}}}\n" for c in CLASSES))
    res = CliRunner().invoke(app, [
        "train", "--image", str(product), "--labels", str(labels), "--classes", str(tmp_path / "classes.yaml"),
        "--resolution", "20", "--resampling", "cubic", "--gdal-config", "GDAL_HTTP_MAX_RETRY=4",
        "--model", "segformer_b0", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2",
        "--tile-size", "32", "--precision", "bf16", "--out-dir", str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code == 0, res.output
    cfg = (tmp_path / "run" / "config.yaml").read_text()
    assert "resolution: '20'" in cfg and "resampling: cubic" in cfg and "GDAL_HTTP_MAX_RETRY: '4'" in cfg
    # labels on the 10 m grid do not fit the 20 m stack: the grid really is 20 m
    res = CliRunner().invoke(app, [
        "train", "--image", str(product), "--labels", str(_labels(tmp_path / "labels10.tif", resolve_scene(product).path)),
        "--classes", str(tmp_path / "classes.yaml"), "--resolution", "20", "--epochs", "1", "--tile-size", "32",
        "--out-dir", str(tmp_path / "run2"), "--no-progress"])
    assert res.exit_code != 0 and "differs from scene" in res.output
