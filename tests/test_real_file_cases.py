"""Issue 14, items 1-8: what a new user hit on real files (rasterio / torchgeo / rio-cogeo test
data), each reproduced by a tiny file generated here. See docs/reliability.md, "Real files"."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from _helpers_reliability import CRS, TRANSFORM, assert_clean_error, cli, make_scene
from _helpers_train import one_thread  # noqa: F401  (autouse fixture)
from _helpers_train import CLASSES, tiny_config, write_scene

RGB = ["red", "green", "blue"]


def _checkpoint(folder: Path, bands: list[str], *, nodata: float | None = 0, mean: float = 1000.0,
                std: float = 500.0, value_range: dict | None = None) -> Path:
    """A real (random) U-Net-R18 checkpoint taking ``bands``."""
    from rs_vit.models.checkpoint import ModelSpec, save_checkpoint
    from rs_vit.models.registry import create_model, get_entry

    model = create_model("unet_resnet18", in_channels=len(bands), num_classes=2, band_names=bands)
    entry = get_entry("unet_resnet18")
    spec = ModelSpec(name="unet_resnet18", in_channels=len(bands), num_classes=2, bands=bands,
                     mean=[mean] * len(bands), std=[std] * len(bands),
                     classes=[{"name": "a", "color": [0, 0, 0]}, {"name": "b", "color": [255, 0, 0]}],
                     tile_size=32, nodata=nodata, value_range=value_range,
                     extra={"tile_multiple": entry.tile_multiple, "fixed_tile": entry.fixed_tile})
    return save_checkpoint(folder, model, spec)


def _rgb(h: int = 40, w: int = 48, seed: int = 0) -> np.ndarray:
    """uint8 RGB pixels in 20..250 with a black (valid, 0) square in the middle."""
    a = np.random.default_rng(seed).integers(20, 250, (3, h, w)).astype(np.uint8)
    a[:, 16:24, 16:24] = 0
    return a


def _mask(h: int = 40, w: int = 48) -> np.ndarray:
    """A GDAL mask: 0 (masked) on the first 8 rows, 255 elsewhere."""
    m = np.full((h, w), 255, np.uint8)
    m[:8] = 0
    return m


def _write_masked(path: Path, kind: str, data: np.ndarray | None = None) -> Path:
    """An RGB uint8 scene without nodata whose first 8 rows are masked: ``jpeg`` (JPEG-compressed
    YCbCr with an internal mask), ``msk`` (a .msk sidecar) or ``rgba`` (alpha band, 0 = masked)."""
    d = _rgb() if data is None else data
    prof = dict(driver="GTiff", width=d.shape[2], height=d.shape[1], count=3, dtype="uint8", crs=CRS,
                transform=TRANSFORM)
    if kind == "jpeg":
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
            with rasterio.open(path, "w", compress="jpeg", photometric="ycbcr", tiled=True, blockxsize=16,
                               blockysize=16, **prof) as dst:
                dst.write(d)
                dst.write_mask(_mask(*d.shape[1:]))
    elif kind == "msk":
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=False):
            with rasterio.open(path, "w", **prof) as dst:
                dst.write(d)
                dst.write_mask(_mask(*d.shape[1:]))
        assert Path(str(path) + ".msk").is_file()
    else:
        with rasterio.open(path, "w", photometric="RGB", alpha="YES", **{**prof, "count": 4}) as dst:
            dst.write(np.concatenate([d, _mask(*d.shape[1:])[None]]))
    return path


# -- 1. relative paths: a saved run resumes and evaluates from any folder ------------------------

def test_config_paths_are_stored_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rs_vit.config import dump_config, load_config

    (tmp_path / "data").mkdir()
    (tmp_path / "cfg").mkdir()
    (tmp_path / "data" / "s.tif").write_bytes(b"")
    (tmp_path / "cfg" / "demo.yaml").write_text(yaml.safe_dump(
        {"data": {"scenes": [{"image": "../data/s.tif", "labels": "../data/l.tif"}]}}))
    monkeypatch.chdir(tmp_path)
    # the README's `--config sample_data/demo.yaml`: a relative config path holding ../ paths
    cfg = load_config("cfg/demo.yaml")
    assert cfg.data.scenes[0].image == tmp_path / "data" / "s.tif"
    assert cfg.data.scenes[0].labels == tmp_path / "data" / "l.tif"
    # flags are relative to the working directory, and end up absolute too
    cfg = load_config(None, {"data.scenes": [{"image": "data/s.tif"}], "train.init_from": "runs/a/best"})
    assert cfg.data.scenes[0].image == tmp_path / "data" / "s.tif"
    assert cfg.train.init_from == tmp_path / "runs" / "a" / "best"
    # saved into a run folder and read back from elsewhere: the same files
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "config.yaml").write_text(dump_config(cfg))
    monkeypatch.chdir(tmp_path / "runs")
    again = load_config("x/config.yaml")
    assert again.data.scenes[0].image == tmp_path / "data" / "s.tif"


def test_old_run_config_with_cwd_relative_paths_still_loads(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from rs_vit.config import load_config

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "s.tif").write_bytes(b"")
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "config.yaml").write_text(yaml.safe_dump(
        {"data": {"scenes": [{"image": "data/s.tif"}]}}))  # as written before paths were absolute
    monkeypatch.chdir(tmp_path)
    assert load_config("runs/x/config.yaml").data.scenes[0].image == tmp_path / "data" / "s.tif"


def test_resume_and_evaluate_a_run_from_another_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rs_vit.config import load_config
    from rs_vit.evaluate.evaluator import evaluate_checkpoint
    from rs_vit.train.loop import resume, train

    write_scene(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    raw = tiny_config({"image": Path("data/scene.tif"), "labels": Path("data/scene_labels.tif")},
                      Path("runs/x"), epochs=1, steps_per_epoch=1, batch_size=2)
    raw["model"]["name"] = "unet_resnet18"
    train(load_config(None, {k: v for k, v in raw.items()}), log=lambda m: None, progress=False)
    saved = yaml.safe_load((tmp_path / "runs" / "x" / "config.yaml").read_text())
    assert Path(saved["data"]["scenes"][0]["image"]).is_absolute()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = resume(tmp_path / "runs" / "x", epochs=2, log=lambda m: None, progress=False)
    assert [h["epoch"] for h in res.history][-1] == 2
    m = evaluate_checkpoint(Path("..") / "runs" / "x" / "best", device="cpu")
    assert m["pixels"] > 0


# -- 2. GDAL masks and alpha bands ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["jpeg", "msk", "rgba"])
def test_masks_count_in_stats(tmp_path: Path, kind: str) -> None:
    from rs_vit.data.stats import file_stats

    scene = _write_masked(tmp_path / f"{kind}.tif", kind)
    r = file_stats(scene)
    assert r["sampled_pixels"] == 40 * 48
    assert r["valid_pixels"] == 32 * 48  # the 8 masked rows are out; the black square is in
    assert [b["name"] for b in r["bands"]] == ["band1", "band2", "band3"]  # alpha is no band
    assert all(b["min"] == 0 for b in r["bands"])  # valid black pixels are data


def test_alpha_band_is_a_mask_not_an_input(tmp_path: Path) -> None:
    from rs_vit.io.bands import match_bands
    from rs_vit.io.raster import scene_info

    scene = _write_masked(tmp_path / "rgba.tif", "rgba")
    info = scene_info(scene)
    assert info.band_names == ["band1", "band2", "band3", "alpha"] and info.input_indexes == [0, 1, 2]
    assert info.mask_kind == "alpha"
    assert match_bands(info.band_names, ["band1", "band2", "band3"]) == [0, 1, 2]
    assert match_bands(scene_info(scene, sensor="rgb").band_names, RGB) == [0, 1, 2]
    # asked for by naming every band: the alpha band is an input (and still a mask)
    named = scene_info(scene, bands=["red", "green", "blue", "opacity"])
    assert named.input_indexes == [0, 1, 2, 3] and named.mask_kind == "alpha"


@pytest.mark.parametrize("kind", ["jpeg", "msk", "rgba"])
def test_masked_pixels_are_nodata_in_prediction(tmp_path: Path, kind: str) -> None:
    from rs_vit.infer.engine import predict_scene

    scene = _write_masked(tmp_path / f"{kind}.tif", kind)
    ck = _checkpoint(tmp_path / "ck", ["band1", "band2", "band3"], nodata=0, mean=128, std=60)
    r = predict_scene(scene, tmp_path / "mask.tif", checkpoint=ck, device="cpu")
    with rasterio.open(r.out) as src:
        out = src.read(1)
    assert (out[:8] == 255).all()  # masked: nodata
    assert (out[8:] != 255).all()  # everything else, the valid black square too, has a class
    assert "masked by" in r.notes[0]


def test_masks_in_training_and_evaluation(tmp_path: Path) -> None:
    from rs_vit.config import DataConfig, SceneDef
    from rs_vit.data.scenes import load_scene
    from rs_vit.evaluate.evaluator import evaluate_mask

    scene = _write_masked(tmp_path / "rgba.tif", "rgba")
    labels = tmp_path / "labels.tif"
    with rasterio.open(labels, "w", driver="GTiff", width=48, height=40, count=1, dtype="uint8", crs=CRS,
                       transform=TRANSFORM) as dst:
        dst.write(np.ones((1, 40, 48), np.uint8))
    data = DataConfig(classes=CLASSES[:2], cache_mb=0)  # read window by window
    for cache in (0, 100):  # the windowed and the in-memory reading
        s = load_scene(SceneDef(image=scene, labels=labels), data.model_copy(update={"cache_mb": cache}))
        assert s.band_indexes == [0, 1, 2]
        img, lab, inv = s.read(0, 0, 40, 48)
        assert img.shape[0] == 3 and inv[:8].all() and not inv[8:].any()
        assert (lab[:8] == 255).all() and (lab[8:] == 1).all()
    # a prediction with a mask: its masked pixels are not scored
    pred = _write_masked(tmp_path / "pred.tif", "msk", data=np.zeros((3, 40, 48), np.uint8))
    with rasterio.open(pred) as src:
        prof = src.profile
    one = tmp_path / "pred1.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(one, "w", **{**prof, "count": 1}) as dst:
            dst.write(np.ones((1, 40, 48), np.uint8))
            dst.write_mask(_mask())
    m = evaluate_mask(one, labels, class_names=["a", "b"])
    assert m["pixels"] == 32 * 48 and m["overall_accuracy"] == 1.0
    # and a reference with a mask: its masked pixels are ignored
    m = evaluate_mask(labels, one, class_names=["a", "b"])
    assert m["pixels"] == 32 * 48


# -- 3. a checkpoint's nodata is not applied to a scene that declares none -----------------------

def test_scene_without_nodata_keeps_its_zeros(tmp_path: Path) -> None:
    from rs_vit.infer.engine import predict_scene

    data = _rgb()
    data[:, :10] = 0  # "ocean": the first 10 rows black, valid
    scene = make_scene(tmp_path / "world.tif", 40, 48, bands=None, count=3, dtype="uint8", nodata=None,
                       data=data)
    ck = _checkpoint(tmp_path / "ck", ["band1", "band2", "band3"], nodata=0, mean=128, std=60)
    r = predict_scene(scene, tmp_path / "a.tif", checkpoint=ck, device="cpu")
    with rasterio.open(r.out) as src:
        assert (src.read(1) != 255).all()
    assert "declares no nodata" in r.notes[0] and "--nodata 0" in r.notes[0]
    r = predict_scene(scene, tmp_path / "b.tif", checkpoint=ck, device="cpu", nodata=0)
    with rasterio.open(r.out) as src:
        out = src.read(1)
    assert (out[:10] == 255).all() and (out[10:16] != 255).all()
    assert "from --nodata" in r.notes[0]


def test_cli_says_which_nodata(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "s.tif", 40, 48, bands=None, count=3, dtype="uint8", nodata=None,
                       data=_rgb())
    ck = _checkpoint(tmp_path / "ck", ["band1", "band2", "band3"], nodata=0, mean=128, std=60)
    res = cli("predict", scene, "-k", ck, "--out", tmp_path / "m.tif", "--no-progress", "--device", "cpu")
    assert res.code == 0, res.stderr
    assert "s.tif: declares no nodata" in res.stderr and "pass --nodata 0" in res.stderr


# -- 4. Sentinel-2 band ids in any subset -------------------------------------------------------

def test_sentinel2_ids_without_b8a(tmp_path: Path) -> None:
    from rs_vit.io.bands import match_bands, resolve_band_names
    from rs_vit.io.raster import scene_info

    assert resolve_band_names(["B04", "B03", "B02", "B08"]) == ["red", "green", "blue", "nir"]
    assert resolve_band_names(["B4", "B3", "B2", "B8"]) == ["red", "green", "blue", "nir"]
    assert resolve_band_names(["b02", "b11", "b12"]) == ["blue", "swir16", "swir22"]
    # ordinary names are not ids
    assert resolve_band_names(["band1", "band2"]) == ["band1", "band2"]
    assert resolve_band_names(["B13", "B2"]) == ["b13", "b2"]
    four = make_scene(tmp_path / "four.tif", bands=["B04", "B03", "B02", "B08"], count=4)
    names = scene_info(four).band_names
    s2 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
    thirteen = scene_info(make_scene(tmp_path / "s2.tif", bands=s2, count=13)).band_names
    assert match_bands(thirteen, names) == [3, 2, 1, 7]


# -- 5. value ranges recorded in the checkpoint and compared -------------------------------------

def test_value_range_is_recorded_and_old_checkpoints_load(tmp_path: Path) -> None:
    from rs_vit.config import DataConfig, SceneDef
    from rs_vit.data.scenes import load_scene
    from rs_vit.data.stats import training_value_range
    from rs_vit.models.checkpoint import META_FILE, read_spec

    p = write_scene(tmp_path / "d")
    s = load_scene(SceneDef(image=p["image"], labels=p["labels"]), DataConfig(classes=CLASSES))
    vr = training_value_range([s])
    assert vr is not None and vr["dtype"] == "uint16" and list(vr["bands"]) == s.info.band_names
    lo, med, hi = vr["bands"]["nir"]
    assert 0 < lo < med < hi < 5000  # nodata (0) excluded
    ck = _checkpoint(tmp_path / "ck", list(vr["bands"]), value_range=vr)
    assert read_spec(ck).value_range == vr
    meta = json.loads((ck / META_FILE).read_text())
    del meta["value_range"]  # a checkpoint written before the field existed
    (ck / META_FILE).write_text(json.dumps(meta))
    assert read_spec(ck).value_range is None


def test_range_mismatch_warns_both_ways() -> None:
    from rs_vit.data.stats import range_mismatch

    rng = np.random.default_rng(0)
    bands = ["red", "green", "blue"]
    byte = {"dtype": "uint8", "bands": {b: [10.0, 120.0, 240.0] for b in bands}}
    refl = {"dtype": "int16", "bands": {b: [300.0, 1500.0, 4200.0] for b in bands}}
    byte_scene = rng.integers(5, 250, (3, 4096)).astype(float)
    refl_scene = rng.integers(250, 4500, (3, 4096)).astype(float)
    assert range_mismatch(byte, bands, byte_scene, "uint8") is None
    assert range_mismatch(refl, bands, refl_scene, "uint16") is None
    w = range_mismatch(byte, bands, refl_scene, "uint16", "s.tif")
    assert w and w.startswith("s.tif: its values (uint16") and "uint8" in w and "\n" not in w
    assert range_mismatch(refl, bands, byte_scene, "uint8")
    # a darker or brighter scene of the same kind is no mismatch
    assert range_mismatch(refl, bands, refl_scene * 0.4, "uint16") is None
    assert range_mismatch(refl, bands, refl_scene * 1.8, "uint16") is None
    assert range_mismatch(None, bands, refl_scene, "uint16") is None
    assert range_mismatch({"dtype": "uint8", "bands": {"nir": [1, 2, 3]}}, bands, refl_scene, "x") is None


def test_predict_warns_on_a_scene_far_outside_the_training_range(tmp_path: Path) -> None:
    from rs_vit.infer.engine import predict_scene

    vr = {"dtype": "uint8", "bands": {b: [10.0, 120.0, 240.0] for b in RGB}}
    ck = _checkpoint(tmp_path / "ck", RGB, nodata=None, mean=128, std=60, value_range=vr)
    scene = make_scene(tmp_path / "refl.tif", 40, 48, bands=RGB, dtype="uint16", nodata=0)  # 100..3000
    r = predict_scene(scene, tmp_path / "a.tif", checkpoint=ck, device="cpu")
    assert any("far outside the range the checkpoint was trained on" in n for n in r.notes)
    ok = make_scene(tmp_path / "byte.tif", 40, 48, bands=RGB, dtype="uint8", data=_rgb(), nodata=None)
    r = predict_scene(ok, tmp_path / "b.tif", checkpoint=ck, device="cpu")
    assert not any("far outside" in n for n in r.notes)


# -- 6. more than 128 bands train ---------------------------------------------------------------

def test_d4_with_hyperspectral_bands() -> None:
    import albumentations as A

    from rs_vit.config import AugmentConfig
    from rs_vit.data.augment import Augment, _numpy_d4_cls

    aug = Augment(AugmentConfig(d4=True, scale=(0.8, 1.2)))
    x = np.random.default_rng(0).random((224, 32, 32), dtype=np.float32)
    y = np.zeros((32, 32), np.int64)
    y[:4, :8] = 1
    seen = set()
    for seed in range(16):
        ox, oy = aug(x, y, seed=seed)
        assert ox.shape == (224, 32, 32) and oy.shape == (32, 32)
        seen.add(oy.tobytes())
    assert len(seen) > 4  # flips and rotations happened
    small = x[:5].transpose(1, 2, 0)
    for seed in range(12):  # the same draws and results as albumentations' own D4
        a, b = A.Compose([A.D4(p=1.0)]), A.Compose([_numpy_d4_cls()(p=1.0)])
        a.set_random_seed(seed)
        b.set_random_seed(seed)
        ra, rb = a(image=small, mask=y), b(image=small, mask=y)
        assert np.array_equal(ra["image"], rb["image"]) and np.array_equal(ra["mask"], rb["mask"])


def test_training_windows_of_a_224_band_scene(tmp_path: Path) -> None:
    from rs_vit.config import AugmentConfig, DataConfig, SceneDef
    from rs_vit.data.augment import Augment
    from rs_vit.data.datasets import RandomWindows
    from rs_vit.data.scenes import load_scene

    scene = make_scene(tmp_path / "enmap.tif", 40, 40, bands=None, count=224, dtype="int16", nodata=-32768)
    labels = tmp_path / "l.tif"
    with rasterio.open(labels, "w", driver="GTiff", width=40, height=40, count=1, dtype="uint8", crs=CRS,
                       transform=TRANSFORM) as dst:
        dst.write((np.arange(40 * 40).reshape(1, 40, 40) % 2).astype(np.uint8))
    s = load_scene(SceneDef(image=scene, labels=labels, split="train"), DataConfig(classes=CLASSES[:2]))
    ds = RandomWindows([s], 32, 4, np.zeros(224), np.ones(224), 255, augment=Augment(AugmentConfig()))
    for i in range(4):  # several draws of the D4 group (OpenCV's flip refused 224 channels)
        x, y = ds[i]
        assert x.shape == (224, 32, 32) and y.shape == (32, 32)


# -- 7. the true std of a constant band ---------------------------------------------------------

def test_stats_report_zero_std_for_a_constant_band(tmp_path: Path) -> None:
    from rs_vit.data.stats import BandStats, file_stats

    data = np.random.default_rng(0).integers(100, 3000, (3, 40, 48)).astype(np.uint16)
    data[1] = 1234
    scene = make_scene(tmp_path / "c.tif", 40, 48, bands=RGB, data=data, nodata=None)
    r = file_stats(scene)
    assert r["bands"][1]["std"] == 0.0 and r["bands"][0]["std"] > 100
    res = cli("stats", scene, "--out", tmp_path / "s.json")
    assert res.code == 0, res.stderr
    assert json.loads((tmp_path / "s.json").read_text())["bands"][1]["std"] == 0.0
    row = next(line for line in res.stdout.splitlines() if "green" in line)
    assert " 0 " in row.replace("│", " ") and " 1 " not in row.replace("│", " ")
    acc = BandStats(1)  # the normaliser keeps its guard
    acc.update(np.full((1, 4, 4), 7.0))
    assert acc.result()[1][0] == 1.0 and acc.result(floor=False)[1][0] == 0.0


# -- 8. evaluate refuses a scene given as the prediction ----------------------------------------

def test_evaluate_refuses_a_multiband_prediction(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "scene.tif", 40, 48, count=6)
    labels = make_scene(tmp_path / "labels.tif", 40, 48, bands=None, count=1, dtype="uint8", nodata=255,
                        data=np.ones((1, 40, 48)))
    res = cli("evaluate", scene, labels, "--num-classes", "2")
    assert_clean_error(res, "scene.tif", "6 bands", "one-band class mask")
    one = make_scene(tmp_path / "band1.tif", 40, 48, bands=None, count=1, dtype="uint16", nodata=0)
    res = cli("evaluate", one, labels, "--num-classes", "2")
    line = assert_clean_error(res, "band1.tif", "outside the 2 classes")
    assert "more]" in line and len(line) < 400  # a few values and how many more, not a dump


def test_evaluate_names_the_reference_and_ignore_value(tmp_path: Path) -> None:
    pred = make_scene(tmp_path / "pred.tif", 40, 48, bands=None, count=1, dtype="uint8", nodata=255,
                      data=np.ones((1, 40, 48)))
    ref = np.ones((1, 40, 48))
    ref[0, :4] = 9
    labels = make_scene(tmp_path / "ref.tif", 40, 48, bands=None, count=1, dtype="uint8", nodata=None, data=ref)
    res = cli("evaluate", pred, labels, "--num-classes", "2")
    assert_clean_error(res, "ref.tif", "[9]", "--ignore-values 9")
    res = cli("evaluate", pred, labels, "--num-classes", "2", "--ignore-values", "9")
    assert res.code == 0, res.stderr



# -- messages (io / data side) ------------------------------------------------------------------

def test_rpc_only_file_is_not_called_south_up(tmp_path: Path) -> None:
    from rasterio.rpc import RPC

    from rs_vit.errors import InputError
    from rs_vit.io.raster import scene_info

    path = tmp_path / "rpc.tif"
    rpc = RPC(height_off=100, height_scale=500, lat_off=45, lat_scale=0.1, long_off=10, long_scale=0.1,
              line_off=20, line_scale=20, samp_off=24, samp_scale=24,
              line_num_coeff=[0, 0, -1] + [0] * 17, line_den_coeff=[1] + [0] * 19,
              samp_num_coeff=[0, 1] + [0] * 18, samp_den_coeff=[1] + [0] * 19)
    with rasterio.open(path, "w", driver="GTiff", width=48, height=40, count=1, dtype="uint8", rpcs=rpc) as dst:
        dst.write(np.ones((1, 40, 48), np.uint8))
    for require_crs in (True, False):
        with pytest.raises(InputError, match=r"rpc.tif: is georeferenced by RPCs .*gdalwarp -rpc") as e:
            scene_info(path, require_crs=require_crs)
        assert "south-up" not in str(e.value)


def test_no_not_georeferenced_warning_leaks(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    from rs_vit.data.stats import file_stats

    path = tmp_path / "plain.tif"
    with rasterio.open(path, "w", driver="GTiff", width=48, height=40, count=1, dtype="uint8") as dst:
        dst.write(np.ones((1, 40, 48), np.uint8))
    recwarn.clear()
    file_stats(path)  # a plain pixel grid: fine for statistics, and no rasterio warning
    assert not [w for w in recwarn if "Georeferenced" in type(w.message).__name__], [str(w.message) for w in recwarn]


def test_polygon_areas_in_a_geographic_crs_without_warnings() -> None:
    import warnings

    from rasterio.transform import from_origin

    from rs_vit.io.vectorize import mask_to_frame

    m = np.zeros((20, 20), np.uint8)
    m[5:10, 5:10] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # geopandas' "geographic CRS ... area" warning would raise
        g = mask_to_frame(m, from_origin(10.0, 50.0, 1e-4, 1e-4), "EPSG:4326", ["a", "b"], min_area=1000)
    assert list(g["class_id"]) == [1, 0]  # the 25-pixel square (about 2000 m²) is kept
    assert 1500 < g["area"][0] < 2500  # m², not degrees²


def test_messages_name_crs_briefly_and_summarise_class_ids(tmp_path: Path) -> None:
    from rasterio.crs import CRS as RioCRS

    from rs_vit.errors import InputError
    from rs_vit.io.labels import read_label_raster
    from rs_vit.io.raster import crs_label, scene_info

    albers = RioCRS.from_proj4("+proj=aea +lat_1=29.5 +lat_2=45.5 +lat_0=23 +lon_0=-96 +datum=WGS84 +units=m")
    assert len(albers.to_wkt()) > 400 and len(crs_label(albers)) <= 60
    assert crs_label(RioCRS.from_epsg(32633)) == "EPSG:32633" and crs_label(None) == "no CRS"
    scene = make_scene(tmp_path / "s.tif", 40, 48)
    lab = tmp_path / "l.tif"
    with rasterio.open(lab, "w", driver="GTiff", width=40, height=40, count=1, dtype="uint8", crs=albers,
                       transform=TRANSFORM) as dst:
        dst.write(np.ones((1, 40, 40), np.uint8))
    with pytest.raises(InputError) as e:
        read_label_raster(lab, scene_info(scene))
    assert "PROJCRS" not in str(e.value) and len(str(e.value)) < 400


def test_land_cover_codes_are_mapped_with_value(tmp_path: Path) -> None:
    from rs_vit.config import DataConfig, SceneDef, load_classes
    from rs_vit.data.scenes import load_scene
    from rs_vit.errors import ConfigError, InputError
    from rs_vit.evaluate.evaluator import evaluate_mask
    from rs_vit.io.labels import class_codes

    codes = [11, 21, 41, 82, 95]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"classes": [{"id": c, "name": f"c{c}"} for c in codes]}))
    with pytest.raises(ConfigError, match=r"got \[11, 21, 41, 82, 95\].*'value'.*value: 11"):
        load_classes(bad)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"classes": [{"id": i, "name": f"c{c}", "value": c} for i, c in enumerate(codes)]}))
    classes = load_classes(good)
    assert class_codes(classes) == {11: 0, 21: 1, 41: 2, 82: 3, 95: 4}
    scene = make_scene(tmp_path / "s.tif", 40, 48)
    ref = np.array(codes)[np.arange(40 * 48).reshape(40, 48) % 5]
    lab = make_scene(tmp_path / "nlcd.tif", 40, 48, bands=None, count=1, dtype="uint8", nodata=0, data=ref[None])
    for cache in (0, 100):
        s = load_scene(SceneDef(image=scene, labels=lab), DataConfig(classes=classes, cache_mb=cache))
        assert np.array_equal(s.read(0, 0, 40, 48)[1], np.arange(40 * 48).reshape(40, 48) % 5)
    ref[0, 0] = 127  # a code no class declares: refused, naming the file and the way out
    lab2 = make_scene(tmp_path / "nlcd2.tif", 40, 48, bands=None, count=1, dtype="uint8", nodata=0, data=ref[None])
    with pytest.raises(InputError, match=r"nlcd2.tif: holds label code\(s\) \[127\].*value"):
        load_scene(SceneDef(image=scene, labels=lab2), DataConfig(classes=classes))
    # without 'value': the undeclared codes are refused with the remap hint, briefly
    with pytest.raises(InputError, match=r"nlcd.tif: .*\[11, 21, 41, 82, 95\].*'value'") as e:
        load_scene(SceneDef(image=scene, labels=lab), DataConfig(classes=CLASSES))
    assert len(str(e.value)) < 500
    # evaluation reads the reference through the same codes
    pred = make_scene(tmp_path / "pred.tif", 40, 48, bands=None, count=1, dtype="uint8", nodata=255,
                      data=(np.arange(40 * 48).reshape(1, 40, 48) % 5))
    m = evaluate_mask(pred, lab, class_names=[c.name for c in classes], class_codes=class_codes(classes))
    assert m["overall_accuracy"] == 1.0


def test_scene_smaller_than_the_training_tile_is_named(tmp_path: Path) -> None:
    from rs_vit.config import DataConfig, SceneDef
    from rs_vit.data.datasets import RandomWindows
    from rs_vit.data.scenes import load_scene
    from rs_vit.errors import ConfigError

    p = write_scene(tmp_path, h=20, w=24, name="tiny")
    s = load_scene(SceneDef(image=p["image"], labels=p["labels"]), DataConfig(classes=CLASSES), tile=32)
    with pytest.raises(ConfigError, match=r"tiny.tif \(24x20 px\).*tile.size"):
        RandomWindows([s], 32, 4, np.zeros(6), np.ones(6), 255)


def test_evaluate_checkpoint_keeps_the_scene_mask(tmp_path: Path) -> None:
    from rs_vit.config import parse_config
    from rs_vit.evaluate.evaluator import evaluate_checkpoint

    scene = _write_masked(tmp_path / "rgba.tif", "rgba")
    labels = make_scene(tmp_path / "l.tif", 40, 48, bands=None, count=1, dtype="uint8", nodata=255,
                        data=np.ones((1, 40, 48)))
    ck = _checkpoint(tmp_path / "ck", ["band1", "band2", "band3"], nodata=None, mean=128, std=60)
    cfg = parse_config({"data": {"scenes": [{"image": str(scene), "labels": str(labels), "split": "val"}],
                                 "classes": CLASSES[:2]}, "train": {"tile_size": 32}})
    m = evaluate_checkpoint(ck, cfg, device="cpu")
    assert m["pixels"] == 32 * 48  # the 8 masked rows are not scored
    # the validation area is predicted from memory: its mask goes along, so masked pixels are
    # not predicted (nor fed to the model as data)
    from rs_vit.evaluate.evaluator import _predict_array
    from rs_vit.infer.engine import SlidingWindowPredictor
    from rs_vit.models.checkpoint import load_model

    predictor = SlidingWindowPredictor(*load_model(ck), device="cpu")
    inv = np.zeros((40, 48), bool)
    inv[:8] = True
    out = _predict_array(predictor, _rgb(), None, crs=CRS, transform=TRANSFORM, invalid=inv)
    assert (out[:8] == 2).all() and (out[8:] < 2).all()


@pytest.mark.parametrize("kind", ["jpeg", "rgba"])
def test_chips_of_a_masked_scene_keep_the_mask_and_drop_alpha(tmp_path: Path, kind: str) -> None:
    from rs_vit.config import DataConfig, SceneDef
    from rs_vit.data.chips import export_chips

    scene = _write_masked(tmp_path / f"{kind}.tif", kind)
    labels = make_scene(tmp_path / "l.tif", 40, 48, bands=None, count=1, dtype="uint8", nodata=255,
                        data=np.ones((1, 40, 48)))
    chips = export_chips(SceneDef(image=scene, labels=labels), DataConfig(classes=CLASSES[:2]),
                         tmp_path / "chips", tile=16, max_invalid=1.0)
    top = [c for c in chips if c.name.endswith("_000000_000000.tif")][0]
    with rasterio.open(top) as src:
        assert src.count == 3 and src.dataset_mask()[:8].max() == 0 and src.dataset_mask()[8:].min() == 255


def test_scene_sample_reads_few_blocks(tmp_path: Path) -> None:
    from rs_vit.data.stats import sample_scene_values

    tiled = make_scene(tmp_path / "t.tif", 300, 300, bands=RGB, tiled=True, blockxsize=64, blockysize=64)
    strip = make_scene(tmp_path / "s.tif", 300, 300, bands=RGB, blockysize=300, compress="deflate")  # one strip
    with rasterio.open(tiled) as src:
        assert sample_scene_values(src, [0, 1, 2], 0).shape == (3, 16 * 64 * 64)
    with rasterio.open(strip) as src:
        assert src.block_shapes[0][0] == 300
        assert sample_scene_values(src, [0, 1, 2], 0).shape == (3, 64 * 300)  # one read across the middle
