"""Imagery as it comes: per-band files, SAFE folders, STAC items and remote files stacked by name
(rs_vit.io.sources), checked against rasterio's own resampling; one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from _helpers_sources import range_server, s2_product, smooth, stac_item, write_band, write_cog
from rs_vit.config import parse_config
from rs_vit.errors import ConfigError, InputError
from rs_vit.io.raster import scene_info
from rs_vit.io.sources import (
    band_from_filename,
    configure_gdal,
    gdal_path,
    parse_gdal_options,
    resolve_scene,
    scene_name,
)

ORDER = ["coastal", "blue", "green", "red", "rededge1", "nir", "nir08", "nir09", "swir16", "swir22", "scl"]


@pytest.fixture(scope="module")
def flat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return s2_product(tmp_path_factory.mktemp("flat"))


def _band_file(folder: Path, ident: str) -> Path:
    return next(f for f in folder.rglob(f"*_{ident}*") if f.is_file())


def _reference(path: Path, shape: tuple[int, int], method: Resampling) -> np.ndarray:
    """rasterio's own resampling of a whole band onto ``shape`` (the same extent)."""
    with rasterio.open(path) as src:
        return src.read(1, out_shape=shape, resampling=method)


def test_filenames_name_bands() -> None:
    assert band_from_filename("T31UFQ_20230101T105441_B02.jp2")[:2] == ("blue", False)
    assert band_from_filename("T31UFQ_20230101T105441_B8A_20m.jp2")[:2] == ("nir08", False)
    assert band_from_filename("B12.tif")[:2] == ("swir22", False)
    assert band_from_filename("T31UFQ_20230101T105441_SCL_20m.jp2")[:2] == ("scl", True)
    assert band_from_filename("LC09_L2SP_198030_20230708_20230711_02_T1_SR_B4.TIF")[:2] == ("red", False)
    assert band_from_filename("LC08_L2SP_198030_20230708_20230711_02_T1_SR_B5.TIF")[:2] == ("nir", False)
    assert band_from_filename("LC08_L1TP_198030_20230708_20230711_02_T1_B8.TIF")[:2] == ("pan", False)
    assert band_from_filename("LE07_L2SP_198030_20030708_20200911_02_T1_SR_B4.TIF")[:2] == ("nir", False)
    assert band_from_filename("LC09_L2SP_198030_20230708_20230711_02_T1_QA_PIXEL.TIF")[:2] == ("qa_pixel", True)
    assert band_from_filename("T31UFQ_20230101T105441_TCI_10m.jp2") is None
    assert band_from_filename("MTD_TL.xml") is None
    assert band_from_filename("scene_NIR.tif", r"_(?P<band>[A-Za-z]+)\.tif$")[:2] == ("nir", False)
    assert band_from_filename("x_band04.tif", r"_(?P<band>band\d+)\.tif$", "sentinel2_l1c")[:2] == ("red", False)
    assert gdal_path("https://h/a.tif") == "/vsicurl/https://h/a.tif"
    assert gdal_path("s3://bucket/k/a.tif") == "/vsis3/bucket/k/a.tif"
    assert gdal_path("/vsicurl/http://h/a.tif") == "/vsicurl/http://h/a.tif"
    assert scene_name("https://h/p/scene.tif?sig=1") == "scene" and scene_name("x/S2B.SAFE/") == "S2B"


def test_band_folder_stacks_by_name_on_the_finest_grid(flat: Path) -> None:
    r = resolve_scene(flat)
    assert r.kind == "bands" and r.band_names == ORDER and r.resolution == (10.0, 10.0)
    with rasterio.open(r.path) as src:
        assert (src.width, src.height, src.crs.to_epsg()) == (60, 60, 32631)
        assert src.transform.c == 600000.0 and src.transform.f == 5000000.0
        assert list(src.descriptions) == ORDER and src.nodata == 0
        stack = src.read()
        # windows read through the VRT equal the whole read (resampling is consistent per window)
        assert np.array_equal(src.read(window=Window(13, 7, 31, 29)), stack[:, 7:36, 13:44])
    for name, ident in [("blue", "B02"), ("rededge1", "B05"), ("swir16", "B11"), ("coastal", "B01"),
                        ("nir09", "B09")]:
        ref = _reference(_band_file(flat, ident), (60, 60), Resampling.bilinear)
        assert np.array_equal(stack[ORDER.index(name)], ref), name
    scl = _reference(_band_file(flat, "SCL"), (60, 60), Resampling.nearest)  # a class band: nearest
    assert np.array_equal(stack[ORDER.index("scl")], scl)
    info = scene_info(flat)  # the rest of rs-vit sees a raster with named bands
    assert info.band_names == ORDER and (info.width, info.height) == (60, 60)
    vrt = flat.parent / "stack.vrt"  # a GDAL VRT of the user's own is a raster like any other
    shutil.copy(r.path, vrt)
    assert resolve_scene(vrt).kind == "raster" and scene_info(vrt).band_names == ORDER


def test_resolution_named_band_and_resampling(flat: Path) -> None:
    r20 = resolve_scene(flat, resolution=20, resampling="cubic", select=["red", "swir16", "scl"])
    with rasterio.open(r20.path) as src:
        assert (src.width, src.height, src.res) == (30, 30, (20.0, 20.0))
        assert list(src.descriptions) == ["red", "swir16", "scl"]
        got = src.read()
    assert np.array_equal(got[0], _reference(_band_file(flat, "B04"), (30, 30), Resampling.cubic))
    assert np.array_equal(got[1], _reference(_band_file(flat, "B11"), (30, 30), Resampling.cubic))
    with rasterio.open(_band_file(flat, "SCL")) as scl:
        assert np.array_equal(got[2], scl.read(1))
    for by_name in ("B11", "swir16"):  # a band's own grid
        r = resolve_scene(flat, resolution=by_name)
        with rasterio.open(r.path) as src:
            assert src.res == (20.0, 20.0) and src.width == 30
    bil = resolve_scene(flat, resolution=10, select=["swir16"])
    with rasterio.open(bil.path) as a, rasterio.open(resolve_scene(flat, resampling="cubic", select=["swir16"]).path) as b:
        assert not np.array_equal(a.read(), b.read())  # the method is applied


def test_safe_l2a_folder_jp2_picks_the_finest_copy(tmp_path: Path) -> None:
    safe = s2_product(tmp_path, size10=40, safe=True, l2a=True, suffix=".jp2")
    r = resolve_scene(safe)
    assert r.kind == "safe" and r.band_names == ORDER and r.name.startswith("S2B_MSIL2A")
    with rasterio.open(r.path) as src:
        assert src.width == 40 and src.res == (10.0, 10.0)
        blue = src.read(ORDER.index("blue") + 1)
    with rasterio.open(safe / "GRANULE" / "L2A_T31UFQ_20230101T105441" / "IMG_DATA" / "R10m"
                       / "T31UFQ_20230101T105441_B02_10m.jp2") as b10:
        assert np.array_equal(blue, b10.read(1))  # the 10 m file, not its 20 m copy


def test_real_jpeg2000_bands(tmp_path: Path) -> None:
    for ident, res in (("B04", 10), ("B8A", 20)):
        n = 400 // res
        write_band(tmp_path / f"T31UFQ_20230101T105441_{ident}.jp2", smooth(n, n, res), res, driver="JP2OpenJPEG",
                   QUALITY=100, REVERSIBLE=True)
    r = resolve_scene(tmp_path)
    assert r.band_names == ["red", "nir08"]
    with rasterio.open(r.path) as src:
        assert src.read(2).shape == (40, 40)
        assert np.array_equal(src.read(2), _reference(tmp_path / "T31UFQ_20230101T105441_B8A.jp2", (40, 40),
                                                      Resampling.bilinear))


def test_list_of_files_landsat_and_pattern(tmp_path: Path) -> None:
    stem = "LC09_L2SP_198030_20230708_20230711_02_T1"
    files = [write_band(tmp_path / f"{stem}_SR_B{i}.TIF", smooth(20, 20, i), 30) for i in (4, 3, 2, 5)]
    files.append(write_band(tmp_path / f"{stem}_QA_PIXEL.TIF", np.full((20, 20), 21824, "uint16"), 30, nodata=1))
    r = resolve_scene([str(f) for f in files])
    assert r.band_names == ["blue", "green", "red", "nir", "qa_pixel"] and r.name == stem
    other = tmp_path / "custom"
    for name in ("RED", "NIR"):
        write_band(other / f"field7_{name}.tif", smooth(10, 10, len(name)), 3.0)
    with pytest.raises(InputError, match="no single-band file named like a Sentinel-2"):
        resolve_scene(other)
    r = resolve_scene(other, band_pattern=r"_(?P<band>[A-Z]+)\.tif$")
    assert r.band_names == ["nir", "red"]


def test_stac_item_local_and_over_http(flat: Path, tmp_path: Path) -> None:
    item = stac_item(flat / "item.json", {f.stem.rsplit("_", 1)[-1]: f.name for f in sorted(flat.glob("*.tif"))})
    local = resolve_scene(item)
    assert local.kind == "stac" and local.band_names == ORDER
    with rasterio.open(local.path) as a, rasterio.open(resolve_scene(flat).path) as b:
        expected = b.read()
        assert np.array_equal(a.read(), expected)
    with range_server(flat) as srv:
        urls = {f.stem.rsplit("_", 1)[-1]: f"{srv.url}/{f.name}" for f in sorted(flat.glob("*.tif"))}
        remote_item = stac_item(tmp_path / "remote.json", urls)
        for scene in (remote_item, f"{srv.url}/item.json"):  # absolute URLs; an item served by URL
            r = resolve_scene(scene, select=["red", "nir", "swir16"])
            with rasterio.open(r.path) as src:
                assert list(src.descriptions) == ["red", "nir", "swir16"]
                assert np.array_equal(src.read(), expected[[3, 5, 8]])
        # only the selected assets were opened
        opened = {p.rsplit("/", 1)[-1] for _, p, _ in srv.requests}
        assert not any(o.endswith(("B01.tif", "B09.tif", "SCL.tif")) for o in opened)


def test_remote_cog_reads_only_what_a_window_needs(tmp_path: Path) -> None:
    data = np.stack([smooth(1024, 1024, s) for s in range(4)])
    cog = write_cog(tmp_path / "scene.tif", data, ["blue", "green", "red", "nir"])
    size = cog.stat().st_size
    with range_server(tmp_path) as srv:
        r = resolve_scene(f"{srv.url}/scene.tif")
        assert r.kind == "remote"
        with rasterio.open(r.path) as src:
            assert list(src.descriptions) == ["blue", "green", "red", "nir"]
            win = src.read(window=Window(600, 300, 64, 64))
        assert np.array_equal(win, data[:, 300:364, 600:664])
        served = srv.bytes_sent
        assert all(rng for cmd, _, rng in srv.requests if cmd == "GET")  # range requests only
    assert served < 0.15 * size, (served, size)
    print(f"served {served} of {size} bytes ({served / size:.1%}) for a 64x64 window")


def test_errors_are_one_line(flat: Path, tmp_path: Path) -> None:
    def one_line(exc: pytest.ExceptionInfo) -> str:
        assert "\n" not in str(exc.value)
        return str(exc.value)

    with pytest.raises(InputError, match=r"band\(s\) rededge3 missing from the product") as e:
        resolve_scene(flat, select=["red", "rededge3"])
    assert "scl" in one_line(e)
    shutil.copy(_band_file(flat, "B02"), tmp_path / "T31UFQ_20230101T105441_B02.tif")
    write_band(tmp_path / "T31UFQ_20230101T105441_B11.tif", smooth(30, 30, 3), 20, origin=(700000.0, 5000000.0))
    with pytest.raises(InputError, match="does not overlap band blue") as e:
        resolve_scene(tmp_path)
    one_line(e)
    with range_server(tmp_path) as srv:
        with pytest.raises(InputError, match=r"cannot open /vsicurl/http://127\.0\.0\.1:\d+/missing\.tif \(") as e:
            resolve_scene(f"{srv.url}/missing.tif")
        assert "404" in one_line(e) or "not" in one_line(e)
    empty = stac_item(tmp_path / "empty.json", {})
    with pytest.raises(InputError, match="STAC item has no single-band raster assets") as e:
        resolve_scene(empty)
    one_line(e)
    partial = stac_item(tmp_path / "partial.json", {"B04": str(_band_file(flat, "B04"))})
    with pytest.raises(InputError, match=r"nir missing from the product \(it has \[red\]\)"):
        resolve_scene(partial, select=["red", "nir"])
    (tmp_path / "feature.json").write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(InputError, match="is not a STAC item"):
        resolve_scene(tmp_path / "feature.json")
    with pytest.raises(InputError, match="names no band of the scene"):
        resolve_scene(flat, resolution="B07")
    with pytest.raises(ConfigError, match="Unknown --resampling 'bilinar'. Did you mean 'bilinear'"):
        resolve_scene(flat, resampling="bilinar")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_gdal_options(["GDAL_HTTP_MAX_RETRY"])
    with pytest.raises(ConfigError, match="not a GDAL configuration option"):
        configure_gdal({"gdal http": "1"})


def test_config_keeps_urls_and_lists(tmp_path: Path) -> None:
    cfg = parse_config({"data": {"scenes": [
        {"image": "https://example.com/a.tif", "labels": str(tmp_path / "l.gpkg")},
        {"image": ["s3://bucket/x_B02.tif", str(tmp_path / "x_B03.tif")], "labels": str(tmp_path / "l.gpkg")},
    ], "resolution": 20, "resampling": "cubic", "gdal_config": {"GDAL_HTTP_MAX_RETRY": "5"}}})
    assert cfg.data.scenes[0].image == "https://example.com/a.tif"
    assert cfg.data.scenes[1].image[0] == "s3://bucket/x_B02.tif"
    assert Path(cfg.data.scenes[1].image[1]) == tmp_path / "x_B03.tif"
    assert cfg.data.resolution == 20 and cfg.data.resampling == "cubic"


def test_sen1floods11_split_into_band_files(shared_data: Path, tmp_path: Path) -> None:
    """The real 13-band Sentinel-2 chip written as one file per band (named like a product, its 20 m
    bands averaged 2x2 and its 60 m bands 4x4: 512 px is not a multiple of 6) stacks back by name
    onto the 10 m grid."""
    src_path = shared_data / "sen1floods11" / "Spain_7370579_S2Hand.tif"
    native = {"B1": 4, "B5": 2, "B6": 2, "B7": 2, "B8A": 2, "B9": 4, "B10": 4, "B11": 2, "B12": 2}
    with rasterio.open(src_path) as src:
        ids = list(src.descriptions)
        full = src.read()
        prof = src.profile
    assert "B8A" in ids
    for i, ident in enumerate(ids):
        f = native.get(ident, 1)
        n = full.shape[1] // f
        data = full[i].reshape(n, f, n, f).mean(axis=(1, 3)).astype(full.dtype) if f > 1 else full[i]
        t = prof["transform"] * rasterio.Affine.scale(f)
        with rasterio.open(tmp_path / f"T30TXK_20190920T105701_{_file_id(ident)}.tif", "w",
                           **{**prof, "count": 1, "width": n, "height": n, "transform": t}) as dst:
            dst.write(data, 1)
    r = resolve_scene(tmp_path)
    names = ["coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "nir09",
             "cirrus", "swir16", "swir22"]
    assert r.band_names == names
    info = scene_info(src_path)
    assert info.band_names == names  # the multi-band original names its bands the same way
    with rasterio.open(r.path) as stack:
        assert (stack.width, stack.height) == (512, 512) and stack.crs == prof["crs"]
        got = stack.read()
    for i, ident in enumerate(ids):
        if ident in ("B2", "B3", "B4", "B8"):
            assert np.array_equal(got[i], full[i])  # 10 m bands pass through untouched
        else:
            ref = _reference(tmp_path / f"T30TXK_20190920T105701_{_file_id(ident)}.tif", (512, 512),
                             Resampling.bilinear)
            assert np.array_equal(got[i], ref), ident


def _file_id(ident: str) -> str:
    """``B1`` → ``B01`` (a product's file naming); ``B8A`` stays."""
    return ident if ident == "B8A" else f"B{int(ident[1:]):02d}"


def test_stac_api_item_url_without_suffix(flat: Path) -> None:
    """STAC APIs serve items at URLs without ``.json``; a remote path that is a Path() folded
    (``https:/…``) still reads."""
    with range_server(flat) as srv:
        urls = {f.stem.rsplit("_", 1)[-1]: f"{srv.url}/{f.name}" for f in sorted(flat.glob("*.tif"))}
        (flat / "items").mkdir(exist_ok=True)
        stac_item(flat / "items" / "S2B_31UFQ", urls)
        r = resolve_scene(f"{srv.url}/items/S2B_31UFQ", select=["blue"])
        assert r.kind == "stac" and r.band_names == ["blue"]
        info = scene_info(Path(f"{srv.url}/T31UFQ_20230101T105441_B02.tif"))
        assert (info.width, info.height) == (60, 60)


def test_a_pixel_size_resamples_a_multiband_raster(tmp_path: Path) -> None:
    data = np.stack([smooth(64, 64, s) for s in range(3)])
    tif = tmp_path / "scene.tif"  # no overviews: rasterio's downsampled read would take one
    with rasterio.open(tif, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint16", crs="EPSG:32631",
                       transform=rasterio.Affine(10, 0, 600000, 0, -10, 5000000), nodata=0) as dst:
        dst.write(data)
        dst.descriptions = ("red", "green", "blue")
    assert resolve_scene(tif).path == tif and resolve_scene(tif, resolution="finest").path == tif
    r = resolve_scene(tif, resolution=20, resampling="average")
    with rasterio.open(r.path) as src:
        assert (src.width, src.res, list(src.descriptions)) == (32, (20.0, 20.0), ["red", "green", "blue"])
        got = src.read()
    with rasterio.open(tif) as src:
        assert np.array_equal(got, src.read(out_shape=(3, 32, 32), resampling=Resampling.average))
    mean = data.reshape(3, 32, 2, 32, 2).mean(axis=(2, 4))
    assert np.abs(got - mean).max() <= 0.5  # the 2x2 averages, rounded


def test_stac_landsat_item_names_bands_like_landsat_files(tmp_path: Path) -> None:
    """A Landsat item's B5 asset (STAC common name nir08) gets the name rs-vit gives Landsat's
    B5 file (nir), so checkpoints move between items and files."""
    stem = "LC09_L2SP_198030_20230708_20230711_02_T1"
    files = {i: write_band(tmp_path / f"{stem}_SR_B{i}.TIF", smooth(20, 20, i), 30) for i in (4, 5)}
    common = {4: "red", 5: "nir08"}
    item = {"type": "Feature", "properties": {"platform": "landsat-9"}, "assets": {
        f"{common[i]}": {"href": f.name, "type": "image/tiff; application=geotiff", "roles": ["data"],
                         "eo:bands": [{"name": f"B{i}", "common_name": common[i]}]} for i, f in files.items()}}
    (tmp_path / "item.json").write_text(json.dumps(item))
    assert resolve_scene(tmp_path / "item.json").band_names == ["red", "nir"]
    assert resolve_scene([str(f) for f in files.values()]).band_names == ["red", "nir"]
