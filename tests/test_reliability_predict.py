"""`rs-vit predict` as a careless or unlucky user runs it: every bad input fails early with one
line naming the file or option and the fix, exit code 2, no traceback, and nothing written."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from _helpers_reliability import (
    BANDS6,
    assert_clean_error,
    cli,
    leftovers,
    load_each_checkpoint_once,
    make_checkpoint,
    make_scene,
    snapshot,
)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with load_each_checkpoint_once():  # copies of the checkpoint (other paths) load for real
        yield make_checkpoint(tmp_path_factory.mktemp("ckpt") / "best")


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


def _predict_fails(ckpt: Path, scene: Path, out_dir: Path, *must: str, extra: tuple[str, ...] = ()) -> str:
    before = snapshot(out_dir)
    res = cli("predict", scene, "-k", ckpt, "--out", out_dir / "mask.tif", "--no-progress", *extra)
    line = assert_clean_error(res, *must)
    assert leftovers(out_dir, before) == [], "a failed run left files behind"
    return line


# -- the scene -------------------------------------------------------------------------------

def test_not_a_raster(ckpt: Path, work: Path) -> None:
    scene = work / "notes.tif"
    scene.write_text("this is not a GeoTIFF\n")
    _predict_fails(ckpt, scene, work, "notes.tif", "cannot be read as a raster")


def test_empty_file(ckpt: Path, work: Path) -> None:
    scene = work / "empty.tif"
    scene.write_bytes(b"")
    _predict_fails(ckpt, scene, work, "empty.tif", "empty file")


def test_truncated_header(ckpt: Path, work: Path) -> None:
    good = make_scene(work / "good.tif")
    scene = work / "cut.tif"
    scene.write_bytes(good.read_bytes()[:300])
    good.unlink()
    _predict_fails(ckpt, scene, work, "cut.tif", "corrupt or truncated")


def test_corrupt_pixel_data(ckpt: Path, work: Path) -> None:
    """The header is intact but compressed pixel data are garbage: GDAL fails while reading."""
    scene = make_scene(work / "bad.tif", compress="deflate", tiled=True, blockxsize=16, blockysize=16)
    data = bytearray(scene.read_bytes())
    with rasterio.open(scene) as src:
        first = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
        last = int(src.get_tag_item("BLOCK_OFFSET_3_2", "TIFF", bidx=6))
    data[first:last] = bytes(range(256)) * ((last - first) // 256) + bytes((last - first) % 256)
    scene.write_bytes(bytes(data))
    with rasterio.open(scene) as src:  # the header is intact
        assert src.count == 6
    _predict_fails(ckpt, scene, work, "bad.tif")


def test_no_crs(ckpt: Path, work: Path) -> None:
    _predict_fails(ckpt, make_scene(work / "nocrs.tif", crs=None), work, "nocrs.tif", "no CRS", "-a_srs")


def test_rotated_transform(ckpt: Path, work: Path) -> None:
    scene = make_scene(work / "rot.tif", transform=Affine(10, 2, 500000, 2, -10, 4000000))
    _predict_fails(ckpt, scene, work, "rot.tif", "rotated", "gdalwarp")


def test_south_up_transform(ckpt: Path, work: Path) -> None:
    scene = make_scene(work / "south.tif", transform=Affine(10, 0, 500000, 0, 10, 4000000))
    _predict_fails(ckpt, scene, work, "south.tif", "south-up", "gdalwarp")


def test_gcp_only_georeferencing(ckpt: Path, work: Path) -> None:
    from rasterio.control import GroundControlPoint

    gcps = [GroundControlPoint(0, 0, 500000, 4000000), GroundControlPoint(0, 64, 500640, 4000000),
            GroundControlPoint(48, 0, 500000, 3999520)]
    scene = work / "gcp.tif"
    with rasterio.open(scene, "w", driver="GTiff", width=64, height=48, count=6, dtype="uint16",
                       gcps=gcps, crs="EPSG:32633") as dst:
        dst.write(np.ones((6, 48, 64), np.uint16))
    _predict_fails(ckpt, scene, work, "gcp.tif", "ground control points", "gdalwarp")


def test_missing_scene(ckpt: Path, work: Path) -> None:
    _predict_fails(ckpt, work / "nope.tif", work, "nope.tif", "no such file")


def test_band_names_do_not_match(ckpt: Path, work: Path) -> None:
    scene = make_scene(work / "rgbn.tif", bands=["blue", "green", "red", "nir"])
    _predict_fails(ckpt, scene, work, "rgbn.tif", "swir16", "--bands")


def test_band_count_does_not_match(ckpt: Path, work: Path) -> None:
    scene = make_scene(work / "anon.tif", bands=None, count=5)
    _predict_fails(ckpt, scene, work, "anon.tif", "5 bands", "--bands")


def test_bands_option_with_wrong_count(ckpt: Path, work: Path) -> None:
    scene = make_scene(work / "s.tif")
    _predict_fails(ckpt, scene, work, "--bands", extra=("--bands", "red,green,blue"))


def test_complex_pixels_refused(ckpt: Path, work: Path) -> None:
    data = (np.ones((6, 48, 64)) * (1 + 2j)).astype("complex64")
    scene = make_scene(work / "slc.tif", dtype="complex64", nodata=None, data=data)
    _predict_fails(ckpt, scene, work, "slc.tif", "complex", "gdal_translate")


def _predict_ok(ckpt: Path, scene: Path, out: Path) -> np.ndarray:
    res = cli("predict", scene, "-k", ckpt, "--out", out, "--no-progress")
    assert res.code == 0, res.stderr
    with rasterio.open(scene) as s, rasterio.open(out) as m:
        assert (m.width, m.height, m.crs, m.transform) == (s.width, s.height, s.crs, s.transform)
        return m.read(1)


def test_nan_and_inf_pixels_become_nodata(ckpt: Path, work: Path) -> None:
    data = np.random.default_rng(0).uniform(100, 3000, (6, 48, 64)).astype("float32")
    data[0, 3, 3] = np.nan
    data[2, 5, 7] = np.inf
    data[5, 9, 11] = -np.inf
    scene = make_scene(work / "f.tif", dtype="float32", nodata=None, data=data)
    mask = _predict_ok(ckpt, scene, work / "mask.tif")
    assert mask[3, 3] == mask[5, 7] == mask[9, 11] == 255  # nodata, never a fake class
    assert (mask[mask != 255] < 3).all() and (mask != 255).sum() == 48 * 64 - 3


@pytest.mark.parametrize("dtype,value", [("uint32", 4_000_000_000), ("int8", -128), ("int64", -(2**62)),
                                         ("float64", 1e300), ("uint64", 2**63)])
def test_overflow_prone_dtypes(ckpt: Path, work: Path, dtype: str, value: float) -> None:
    """Extreme values of wide or narrow types never wrap around: the mask is valid classes."""
    data = np.full((6, 48, 64), value, dtype=dtype)
    data[:, :10] = np.asarray(7, dtype=dtype)
    scene = make_scene(work / f"{dtype}.tif", dtype=dtype, nodata=None, data=data)
    mask = _predict_ok(ckpt, scene, work / "mask.tif")
    assert mask.min() >= 0 and (mask < 3).all()


def test_all_nodata_scene_refused(ckpt: Path, work: Path) -> None:
    scene = make_scene(work / "blank.tif", data=np.zeros((6, 48, 64)), nodata=0)
    _predict_fails(ckpt, scene, work, "blank.tif", "nodata", "--nodata")


def test_scene_smaller_than_one_tile_is_padded(ckpt: Path, work: Path) -> None:
    scene = make_scene(work / "small.tif", 10, 12)
    mask = _predict_ok(ckpt, scene, work / "mask.tif")
    assert mask.shape == (10, 12) and (mask < 3).all()


# -- engine options --------------------------------------------------------------------------

@pytest.mark.parametrize("option,value,must", [
    ("--tile-size", "30", "multiple of 32"),
    ("--tile-size", "0", "tile size 0"),
    ("--batch-size", "0", "--batch-size"),
    ("--overlap", "-0.5", "overlap"),
    ("--overlap", "32", "overlap"),
    ("--overlap", "nan", "--overlap"),
    ("--blend", "cosine", "--blend"),
    ("--device", "tpu", "device"),
    ("--precision", "fp8", "precision"),
    ("--tta", "spin", "tta"),
    ("--prob-dtype", "int4", "--prob-dtype"),
])
def test_impossible_engine_options(ckpt: Path, work: Path, option: str, value: str, must: str) -> None:
    scene = make_scene(work / "s.tif")
    before = snapshot(work)
    res = cli("predict", scene, "-k", ckpt, "--out", work / "mask.tif", "--no-progress", option, value)
    assert_clean_error(res, must)
    assert leftovers(work, before) == []


# -- the checkpoint --------------------------------------------------------------------------

def _copy_ckpt(ckpt: Path, dst: Path) -> Path:
    import shutil

    return Path(shutil.copytree(ckpt, dst))


def test_checkpoint_is_not_one(ckpt: Path, work: Path) -> None:
    fake = work / "fake"
    fake.mkdir()
    (fake / "model.pth").write_bytes(b"\x80\x04not really")
    _predict_fails(ckpt=fake, scene=make_scene(work / "s.tif"), out_dir=work).lower()


def test_checkpoint_missing(work: Path) -> None:
    line = _predict_fails(work / "nope", make_scene(work / "s.tif"), work, "does not exist")
    assert "nope" in line


def test_checkpoint_description_corrupt(ckpt: Path, work: Path) -> None:
    bad = _copy_ckpt(ckpt, work / "bad")
    (bad / "rs_vit.json").write_text("{ not json")
    _predict_fails(bad, make_scene(work / "s.tif"), work, "rs_vit.json", "corrupt")


def test_checkpoint_from_newer_format(ckpt: Path, work: Path) -> None:
    import json

    new = _copy_ckpt(ckpt, work / "new")
    meta = json.loads((new / "rs_vit.json").read_text())
    meta["format_version"] = 99
    (new / "rs_vit.json").write_text(json.dumps(meta))
    _predict_fails(new, make_scene(work / "s.tif"), work, "version 99", "upgrade")


def test_checkpoint_for_another_architecture(ckpt: Path, work: Path) -> None:
    import json

    other = _copy_ckpt(ckpt, work / "other")
    meta = json.loads((other / "rs_vit.json").read_text())
    meta["name"] = "unet_resnet34"
    (other / "rs_vit.json").write_text(json.dumps(meta))
    _predict_fails(other, make_scene(work / "s.tif"), work, "unet_resnet34", "another architecture")


def test_checkpoint_weights_truncated(ckpt: Path, work: Path) -> None:
    cut = _copy_ckpt(ckpt, work / "cut")
    w = cut / "model.safetensors"
    w.write_bytes(w.read_bytes()[:5000])
    _predict_fails(cut, make_scene(work / "s.tif"), work, "model.safetensors", "corrupt")


def test_checkpoint_weights_missing(ckpt: Path, work: Path) -> None:
    gone = _copy_ckpt(ckpt, work / "gone")
    (gone / "model.safetensors").unlink()
    _predict_fails(gone, make_scene(work / "s.tif"), work, "model.safetensors")


# -- the output ------------------------------------------------------------------------------

def test_output_folder_that_cannot_be_created(ckpt: Path, work: Path) -> None:
    # a missing folder is created (issue 14; tests/test_fixes_training.py), one under a file cannot be
    scene = make_scene(work / "s.tif")
    (work / "afile").write_text("not a folder")
    res = cli("predict", scene, "-k", ckpt, "--out", work / "afile" / "sub" / "mask.tif")
    assert_clean_error(res, "afile", "Cannot create folder")


def test_output_exists_is_not_overwritten(ckpt: Path, work: Path) -> None:
    scene = make_scene(work / "s.tif")
    out = work / "mask.tif"
    out.write_bytes(b"precious")
    res = cli("predict", scene, "-k", ckpt, "--out", out)
    assert_clean_error(res, "mask.tif", "--overwrite")
    assert out.read_bytes() == b"precious"


def test_overwrite_replaces(ckpt: Path, work: Path) -> None:
    scene = make_scene(work / "s.tif")
    out = work / "mask.tif"
    out.write_bytes(b"old")
    res = cli("predict", scene, "-k", ckpt, "--out", out, "--overwrite", "--no-progress")
    assert res.code == 0, res.stderr
    with rasterio.open(out) as m:
        assert m.shape == (48, 64)
    assert [p.name for p in work.iterdir() if p.name.startswith(".")] == []


def _read_only_folder(path: Path) -> Path:
    """A folder the current user cannot write to: chmod for users, a read-only mount for root."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        return path
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("running as root and cannot mount a read-only tmpfs to test a read-only folder")
    return path


def test_output_folder_read_only(ckpt: Path, work: Path) -> None:
    ro = _read_only_folder(work / "ro")
    try:
        res = cli("predict", make_scene(work / "s.tif"), "-k", ckpt, "--out", ro / "mask.tif")
        assert_clean_error(res, "ro", "not writable")
        assert list(ro.iterdir()) == []
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(ro)], check=False)
        else:
            ro.chmod(0o755)


def _small_disk(path: Path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_disk_full_while_writing(ckpt: Path, work: Path) -> None:
    """A full disk is reported, and no truncated file is left under the final name.

    GDAL only *logs* some write failures and closes the file as if complete: the atomic writer
    checks every block of a GeoTIFF reached the disk before it renames it."""
    full = work / "full"
    if not _small_disk(full, "8k"):
        pytest.skip("needs root to mount a tiny tmpfs (see test_disk_full_simulated)")
    try:
        res = cli("predict", make_scene(work / "s.tif"), "-k", ckpt, "--out", full / "mask.tif",
                  "--no-progress", "--probabilities", "--prob-dtype", "float32")
        assert_clean_error(res, "disk full", "free space")
        assert list(full.iterdir()) == []
    finally:
        subprocess.run(["umount", str(full)], check=False)


def test_disk_full_simulated(ckpt: Path, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same without root: the raster writer raises ENOSPC half-way through."""
    from rs_vit.io import writers

    calls = {"n": 0}
    real = writers.RasterSink.write

    def failing(self: writers.RasterSink, row0: int, data: np.ndarray) -> None:
        calls["n"] += 1
        if calls["n"] >= 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        real(self, row0, data)

    monkeypatch.setattr(writers.RasterSink, "write", failing)
    before = snapshot(work)
    scene = make_scene(work / "s.tif", 80, 64)
    res = cli("predict", scene, "-k", ckpt, "--out", work / "mask.tif", "--no-progress")
    assert_clean_error(res, "disk full", "mask.tif")
    assert leftovers(work, before) == ["s.tif"]


# -- what the CLI does with failures it does not know --------------------------------------

def test_unexpected_error_is_one_line_and_debug_shows_traceback(
    ckpt: Path, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rs_vit.infer import engine

    def boom(*a: object, **k: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(engine, "predict_scene", boom)
    scene = make_scene(work / "s.tif")
    res = cli("predict", scene, "-k", ckpt, "--out", work / "mask.tif", "--no-progress")
    line = assert_clean_error(res, "ZeroDivisionError", "a bug", "--debug", code=1)
    assert line.startswith("Unexpected error:")
    res = cli("--debug", "predict", scene, "-k", ckpt, "--out", work / "mask.tif", "--no-progress")
    assert isinstance(res.exception, ZeroDivisionError)


def test_debug_reraises_user_errors(ckpt: Path, work: Path) -> None:
    from rs_vit.errors import InputError

    res = cli("--debug", "predict", work / "nope.tif", "-k", ckpt, "--out", work / "mask.tif")
    assert isinstance(res.exception, InputError)


def test_gdal_error_deep_inside_is_clean(ckpt: Path, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rasterio.errors import RasterioIOError

    from rs_vit.infer import reader

    def bad_read(*a: object, **k: object) -> None:
        raise RasterioIOError("s.tif, band 1: IReadBlock failed at X offset 0, Y offset 0")

    monkeypatch.setattr(reader, "read_window", bad_read)
    before = snapshot(work)
    scene = make_scene(work / "s.tif")
    res = cli("predict", scene, "-k", ckpt, "--out", work / "mask.tif", "--no-progress")
    assert_clean_error(res, "IReadBlock", "corrupt")
    assert leftovers(work, before) == ["s.tif"]


def test_memory_error_is_clean(ckpt: Path, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rs_vit.infer import engine

    def oom(*a: object, **k: object) -> None:
        raise MemoryError()

    monkeypatch.setattr(engine, "predict_scene", oom)
    res = cli("predict", make_scene(work / "s.tif"), "-k", ckpt, "--out", work / "mask.tif", "--no-progress")
    assert_clean_error(res, "out of memory", "--batch-size")


def test_bands_used_by_name(ckpt: Path, work: Path) -> None:
    """A scene with the model's bands in another order (plus one extra) is mapped by name."""
    order = ["swir22", "coastal", *reversed(BANDS6[:-1])]
    scene = make_scene(work / "shuffled.tif", bands=order)
    mask = _predict_ok(ckpt, scene, work / "mask.tif")
    assert (mask < 3).all()
