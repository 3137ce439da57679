"""The streaming engine: blending, streaming vs in-memory, nodata, georeferencing, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from _helpers_infer import BANDS, CRS, Constant, Context, Pointwise, make_scene, make_spec
from rs_vit.errors import BandMismatchError, InputError, OutputError
from rs_vit.infer import tta
from rs_vit.infer.blend import BLENDS, blend_profile
from rs_vit.infer.engine import SlidingWindowPredictor, argmax_classes, predict_scene
from rs_vit.io.windows import make_grid


def _predict(tmp_path: Path, scene: Path, model: torch.nn.Module, spec, name: str = "out.tif", **kw):
    kw.setdefault("precision", "fp32")
    kw.setdefault("device", "cpu")
    return predict_scene(scene, tmp_path / name, model=model, spec=spec, **kw)


@pytest.mark.parametrize("blend", BLENDS)
def test_constant_model_gives_uniform_mosaic_with_every_blend(tmp_path: Path, blend: str) -> None:
    scene = make_scene(tmp_path / "s.tif", 53, 71, nodata=None)
    logits = [0.3, 1.2, -0.5]
    spec = make_spec(3)
    r = _predict(tmp_path, scene, Constant(logits), spec, tile_size=24, overlap=0.5, blend=blend,
                 probabilities=True, prob_dtype="float32")
    with rasterio.open(r.outputs["probabilities"]) as src:
        probs = src.read()
    expected = torch.softmax(torch.tensor(logits), 0).numpy()
    np.testing.assert_allclose(probs, np.broadcast_to(expected[:, None, None], probs.shape), atol=2e-6)
    with rasterio.open(r.out) as src:
        assert (src.read(1) == 1).all()


def _in_memory_reference(scene: Path, predictor: SlidingWindowPredictor) -> np.ndarray:
    """Whole-scene accumulator (the naive approach) with the same grid and weights."""
    with rasterio.open(scene) as src:
        img = src.read().astype(np.float32)
    c, h, w = img.shape
    t = predictor.tile
    acc = np.zeros((predictor.spec.num_classes, h, w), np.float64)
    ws = np.zeros((h, w), np.float64)
    prof = blend_profile(t, predictor.blend, predictor.overlap_px).astype(np.float64)
    for row in make_grid(h, w, t, predictor.overlap):
        for r, cc in row:
            win = img[:, r: r + t, cc: cc + t]
            wh, ww = win.shape[1:]
            padded = np.pad(win, ((0, 0), (0, t - wh), (0, t - ww)), mode="reflect")
            p = predictor.predict_batch(padded[None])[0].numpy()[:, :wh, :ww].astype(np.float64)
            wgt = np.outer(prof[:wh], prof[:ww])
            acc[:, r: r + wh, cc: cc + ww] += p * wgt
            ws[r: r + wh, cc: cc + ww] += wgt
    return acc / ws


@pytest.mark.parametrize("overlap,blend", [(0.5, "hann"), (0.25, "gaussian"), (10, "spline"), (0.0, "uniform")])
def test_streaming_equals_in_memory_accumulation(tmp_path: Path, overlap: float, blend: str) -> None:
    scene = make_scene(tmp_path / "s.tif", 77, 58, nodata=None, seed=3)
    spec = make_spec(4)
    model = Context(4, 4)
    pred = SlidingWindowPredictor(model, spec, tile_size=32, overlap=overlap, blend=blend, device="cpu",
                                  precision="fp32", batch_size=3, max_read_width=40)
    r = predict_scene(scene, tmp_path / "m.tif", predictor=pred, probabilities=True, prob_dtype="float32")
    with rasterio.open(r.outputs["probabilities"]) as src:
        streamed = src.read()
    ref = _in_memory_reference(scene, pred)
    np.testing.assert_allclose(streamed, ref, atol=1e-5)
    with rasterio.open(r.out) as src:
        np.testing.assert_array_equal(src.read(1), argmax_classes(ref.astype(np.float32)))


def test_pointwise_model_tiled_equals_whole_image(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "s.tif", 64, 96, nodata=None)
    spec = make_spec(3)
    model = Pointwise(4, 3)
    r = _predict(tmp_path, scene, model, spec, tile_size=32, overlap=0.25, blend="hann")
    with rasterio.open(scene) as src:
        x = (torch.from_numpy(src.read().astype(np.float32)) - 1000.0) / 500.0
    with torch.no_grad():
        ref = model(x[None]).argmax(1)[0].numpy()
    with rasterio.open(r.out) as src:
        np.testing.assert_array_equal(src.read(1), ref)
    assert r.windows == 4 * 3 and r.windows_skipped == 0


def test_georeferencing_dtype_colours_and_names(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "s.tif", 40, 50)
    spec = make_spec(3)
    r = _predict(tmp_path, scene, Pointwise(4, 3), spec, tile_size=16, confidence=True)
    with rasterio.open(scene) as s, rasterio.open(r.out) as m, rasterio.open(r.outputs["confidence"]) as c:
        for o in (m, c):
            assert o.crs == s.crs and o.crs.to_epsg() == 32633
            assert o.transform == s.transform
            assert (o.width, o.height) == (s.width, s.height)
        assert m.dtypes[0] == "uint8" and m.nodata == 255
        assert m.colormap(1)[1] == (40, 100, 200, 255)
        assert m.tags(1)["classes"] == "c0,c1,c2"
        assert m.profile["compress"].lower() == "deflate"
        conf = c.read(1)
        assert conf.dtype == np.uint8 and conf.min() >= 254 // 3 and conf.max() <= 254


def test_many_classes_use_uint16(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "s.tif", 20, 20)
    spec = make_spec(300)
    r = _predict(tmp_path, scene, Pointwise(4, 300), spec, tile_size=16)
    with rasterio.open(r.out) as m:
        assert m.dtypes[0] == "uint16" and m.nodata == 65535
        assert m.read(1).max() < 300


def test_nodata_windows_skipped_and_written_as_nodata(tmp_path: Path) -> None:
    # rows 0..31 and 64..111 nodata: with tile 16 / overlap 0 the first 2 and last 3 rows of
    # windows (5 windows each) are skipped
    scene = make_scene(tmp_path / "s.tif", 112, 80, nodata=0, nodata_box=(0, 32, 0, 80))
    with rasterio.open(scene, "r+") as dst:  # a few scattered nodata pixels inside valid data
        arr = dst.read()
        arr[:, 50, 10:13] = 0
        arr[:, 64:] = 0
        dst.write(arr)
    spec = make_spec(3)
    model = Pointwise(4, 3)
    calls = []
    orig = model.forward
    model.forward = lambda x: (calls.append(x.shape[0]), orig(x))[1]  # type: ignore[method-assign]
    r = _predict(tmp_path, scene, model, spec, tile_size=16, overlap=0, probabilities=True, prob_dtype="float32",
                 batch_size=1)
    assert r.windows_skipped == 25 and r.windows == 10 and sum(calls) == 10
    with rasterio.open(r.out) as m, rasterio.open(r.outputs["probabilities"]) as p:
        mask, probs = m.read(1), p.read()
    assert (mask[:32] == 255).all() and (mask[32:50] != 255).all() and (mask[64:] == 255).all()
    assert (mask[50, 10:13] == 255).all() and mask[50, 9] != 255
    assert np.isnan(probs[:, :32]).all() and np.isfinite(probs[:, 32:50]).all() and np.isnan(probs[:, 64:]).all()


def test_scene_smaller_than_tile_is_padded_and_cropped(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "s.tif", 9, 13, nodata=None)
    spec = make_spec(3)
    model = Pointwise(4, 3)
    r = _predict(tmp_path, scene, model, spec, tile_size=32)
    assert r.windows == 1
    with rasterio.open(scene) as src:
        x = (torch.from_numpy(src.read().astype(np.float32)) - 1000.0) / 500.0
    with torch.no_grad():
        ref = model(x[None]).argmax(1)[0].numpy()
    with rasterio.open(r.out) as m:
        assert m.shape == (9, 13)
        np.testing.assert_array_equal(m.read(1), ref)


def test_d4_transforms_invert_exactly() -> None:
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)
    for k, flip in tta.D4:
        np.testing.assert_array_equal(tta.invert(tta.apply(x, k, flip), k, flip), x)
    assert len({tta.apply(x, k, f).numpy().tobytes() for k, f in tta.D4}) == 8


def test_tta_with_equivariant_model_changes_nothing_and_runs_every_view(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "s.tif", 40, 40, nodata=None)
    spec = make_spec(3)
    model = Pointwise(4, 3)
    a = _predict(tmp_path, scene, model, spec, "a.tif", tile_size=16, probabilities=True, prob_dtype="float32")
    calls = []
    orig = model.forward
    model.forward = lambda x: (calls.append(1), orig(x))[1]  # type: ignore[method-assign]
    b = _predict(tmp_path, scene, model, spec, "b.tif", tile_size=16, probabilities=True, prob_dtype="float32",
                 tta="d4", batch_size=64)
    assert len(calls) == 8
    with rasterio.open(a.outputs["probabilities"]) as pa, rasterio.open(b.outputs["probabilities"]) as pb:
        np.testing.assert_allclose(pa.read(), pb.read(), atol=1e-5)


def test_bf16_precision_runs_close_to_fp32(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "s.tif", 32, 32, nodata=None)
    spec = make_spec(3)
    model = Pointwise(4, 3)
    a = _predict(tmp_path, scene, model, spec, "a.tif", tile_size=16)
    b = _predict(tmp_path, scene, model, spec, "b.tif", tile_size=16, precision="bf16")
    with rasterio.open(a.out) as ma, rasterio.open(b.out) as mb:
        assert (ma.read(1) == mb.read(1)).mean() > 0.95


class _Boom(torch.nn.Module):
    def __init__(self, after: int, exc: type[BaseException]) -> None:
        super().__init__()
        self.n, self.after, self.exc = 0, after, exc
        self.conv = torch.nn.Conv2d(4, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.n += 1
        if self.n > self.after:
            raise self.exc("boom")
        return self.conv(x)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, ValueError])
def test_crash_leaves_no_file_under_final_names(tmp_path: Path, exc: type[BaseException]) -> None:
    scene = make_scene(tmp_path / "s.tif", 64, 64)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(exc):
        predict_scene(scene, out_dir / "m.tif", model=_Boom(3, exc), spec=make_spec(3), tile_size=16,
                      device="cpu", precision="fp32", batch_size=1, probabilities=True, confidence=True,
                      vector=out_dir / "m.gpkg", cog=True)
    assert list(out_dir.iterdir()) == []


def test_refuses_existing_output_and_band_mismatch(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "s.tif", 16, 16)
    out = tmp_path / "m.tif"
    out.write_bytes(b"x")
    with pytest.raises(OutputError, match="--overwrite"):
        _predict(tmp_path, scene, Pointwise(4, 3), make_spec(3), "m.tif", tile_size=16)
    assert out.read_bytes() == b"x"
    spec = make_spec(3, bands=["blue", "green", "red", "swir16"])
    with pytest.raises(BandMismatchError):
        _predict(tmp_path, scene, Pointwise(4, 3), spec, "n.tif", tile_size=16)


def test_vector_output(tmp_path: Path) -> None:
    import geopandas as gpd

    scene = make_scene(tmp_path / "s.tif", 48, 48, nodata_box=(0, 8, 0, 48))
    spec = make_spec(3)
    r = _predict(tmp_path, scene, Pointwise(4, 3), spec, tile_size=16, vector=tmp_path / "v.gpkg")
    gdf = gpd.read_file(tmp_path / "v.gpkg")
    assert len(gdf) == r.polygons > 0
    assert gdf.crs.to_epsg() == 32633
    assert set(gdf["class_name"]) <= {"c0", "c1", "c2"}
    with rasterio.open(r.out) as m:
        mask = m.read(1)
    total = sum(float((mask == k).sum()) for k in range(3)) * 100.0  # 10 m pixels
    assert gdf.geometry.area.sum() == pytest.approx(total)
    big = predict_scene(scene, tmp_path / "m2.tif", model=Pointwise(4, 3), spec=spec, tile_size=16,
                        device="cpu", precision="fp32", vector=tmp_path / "v2.gpkg", min_area=1000.0,
                        simplify=10.0)
    gdf2 = gpd.read_file(tmp_path / "v2.gpkg")
    assert len(gdf2) == big.polygons < len(gdf)
    assert (gdf2["area"] >= 1000.0 * 0.5).all()


def test_cog_output_has_overviews(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "s.tif", 600, 700, nodata=None)
    r = _predict(tmp_path, scene, Pointwise(4, 3), make_spec(3), tile_size=200, overlap=0, cog=True,
                 probabilities=True)
    for p in (r.out, r.outputs["probabilities"]):
        with rasterio.open(p) as src:
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert src.overviews(1), "COG without overviews"
            assert src.crs.to_string() == CRS
    with rasterio.open(r.out) as src:
        assert src.colormap(1)[1] == (40, 100, 200, 255)
    assert not list(tmp_path.glob("*.part*"))


def test_each_block_is_decoded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rs_vit.infer.reader as rd

    scene = make_scene(tmp_path / "s.tif", 80, 112, nodata=None, block=16)
    reads = []
    orig = rd.read_window
    monkeypatch.setattr(rd, "read_window", lambda src, win, idx: (reads.append(win), orig(src, win, idx))[1])
    r = _predict(tmp_path, scene, Pointwise(4, 3), make_spec(3), tile_size=24, overlap=0.5)
    assert r.windows == 6 * 9  # overlapping windows, none aligned to the 16 px blocks
    assert sum(w.width * w.height for w in reads) == 80 * 112  # every pixel read exactly once
    assert all(w.row_off % 16 == 0 and w.col_off % 16 == 0 for w in reads)


def test_bands_picked_by_name(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "s.tif", 24, 24, bands=["nir", "red", "green", "blue", "swir16"], nodata=None)
    spec = make_spec(3)  # wants blue, green, red, nir
    model = Pointwise(4, 3)
    r = _predict(tmp_path, scene, model, spec, tile_size=24)
    with rasterio.open(scene) as src:
        x = src.read([4, 3, 2, 1]).astype(np.float32)
    with torch.no_grad():
        ref = model((torch.from_numpy(x)[None] - 1000.0) / 500.0).argmax(1)[0].numpy()
    with rasterio.open(r.out) as m:
        np.testing.assert_array_equal(m.read(1), ref)
    assert BANDS == ["blue", "green", "red", "nir"]


def test_reader_error_propagates_without_hanging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rasterio.errors import RasterioIOError

    import rs_vit.infer.reader as rd

    scene = make_scene(tmp_path / "s.tif", 600, 64, nodata=None, block=16)  # 3 units of 256 rows
    calls = []
    orig = rd.read_window

    def flaky(src, win, idx):
        calls.append(win)
        if len(calls) == 2:
            raise RasterioIOError("read failed")
        return orig(src, win, idx)

    monkeypatch.setattr(rd, "read_window", flaky)
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    with pytest.raises(InputError, match="read failed"):
        predict_scene(scene, out_dir / "m.tif", model=Pointwise(4, 3), spec=make_spec(3), tile_size=16,
                      device="cpu", precision="fp32", batch_size=1)
    assert list(out_dir.iterdir()) == []


def test_all_nodata_scene_refused_and_nothing_written(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "s.tif", 40, 40, nodata=0, nodata_box=(0, 40, 0, 40))
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    with pytest.raises(InputError, match="every pixel is nodata"):
        predict_scene(scene, out_dir / "m.tif", model=Pointwise(4, 3), spec=make_spec(3), tile_size=16,
                      device="cpu", precision="fp32")
    assert list(out_dir.iterdir()) == []


def test_bad_engine_values_refused() -> None:
    from rs_vit.errors import ConfigError, ModelError

    spec = make_spec(3)
    with pytest.raises(ModelError):
        SlidingWindowPredictor(Pointwise(4, 3), spec, tile_size=0, device="cpu")
    with pytest.raises(ConfigError, match="--overlap"):
        SlidingWindowPredictor(Pointwise(4, 3), spec, overlap=float("nan"), device="cpu")
    with pytest.raises(ConfigError, match="--batch-size"):
        SlidingWindowPredictor(Pointwise(4, 3), spec, batch_size=0, device="cpu")


@pytest.mark.slow
def test_torch_compile_gives_the_same_mask(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "s.tif", 40, 56, nodata=None)
    model = Context(4, 3)
    a = _predict(tmp_path, scene, model, make_spec(3), "a.tif", tile_size=16, batch_size=3)
    b = _predict(tmp_path, scene, model, make_spec(3), "b.tif", tile_size=16, batch_size=3, compile=True)
    with rasterio.open(a.out) as ma, rasterio.open(b.out) as mb:
        assert (ma.read(1) == mb.read(1)).mean() > 0.99
