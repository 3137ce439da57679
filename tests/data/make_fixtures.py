"""Write the tiny test fixtures in ``tests/data`` (small, seeded, on a real CRS and grid).

    python tests/data/make_fixtures.py             # (re)writes the files beside this script
    python tests/data/make_fixtures.py --out-dir /tmp/fixtures

Every array comes from :func:`numpy.random.default_rng` with a fixed seed, so running the
script again writes identical arrays (the tests check this by calling :func:`write_all` into a
temporary directory). See ``README.md`` beside this script for what each file is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import yaml
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import shapes
from scipy import ndimage
from shapely.geometry import shape

SEED = 1234
EPSG = 32633  # WGS 84 / UTM zone 33N
PIXEL_SIZE = 10.0
ORIGIN = (601_230.0, 5_302_470.0)  # upper-left corner (x, y)
LABEL_NODATA = 255

BANDS_6 = ("blue", "green", "red", "nir", "swir16", "swir22")
BANDS_13 = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
BANDS_SAR = ("VV", "VH")

CLASSES = (
    (0, "water", (31, 119, 180)),
    (1, "vegetation", (44, 160, 44)),
    (2, "bare_soil", (190, 145, 90)),
)

# Surface reflectance x 10000 per class, in BANDS_6 order.
SIGNATURES_6 = np.array(
    [
        [500, 450, 300, 150, 80, 50],  # water
        [300, 700, 400, 3800, 2000, 950],  # vegetation
        [900, 1200, 1600, 2400, 3300, 2700],  # bare soil
    ],
    dtype=np.float64,
)
# Top-of-atmosphere reflectance x 10000 per class, in BANDS_13 order (L1C).
SIGNATURES_13 = np.array(
    [
        [1300, 1050, 900, 700, 650, 600, 580, 500, 480, 150, 10, 200, 120],  # water
        [1250, 950, 900, 700, 1100, 2300, 2800, 3000, 3200, 900, 12, 1900, 950],  # vegetation
        [1400, 1250, 1450, 1700, 1900, 2100, 2250, 2400, 2550, 700, 15, 3200, 2600],  # bare soil
    ],
    dtype=np.float64,
)
# Sentinel-1 backscatter in dB per class (VV, VH).
SIGNATURES_SAR = np.array([[-22.0, -28.5], [-9.5, -16.0], [-12.5, -21.5]])


def grid_transform(origin: tuple[float, float] = ORIGIN) -> Affine:
    return Affine(PIXEL_SIZE, 0.0, origin[0], 0.0, -PIXEL_SIZE, origin[1])


def _corner(height: int, width: int, size: int, corner: str) -> np.ndarray:
    """A right-triangle mask of ``size`` px legs in one corner ("ul", "ur", "ll" or "lr")."""
    rows, cols = np.mgrid[0:height, 0:width]
    r = rows if corner[0] == "u" else height - 1 - rows
    c = cols if corner[1] == "l" else width - 1 - cols
    return r + c < size


def _smooth(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth zero-mean, unit-variance noise (spatially correlated brightness variation)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return (field - field.mean()) / field.std()


def _layout(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A small land-cover map: bare soil background, two vegetation parcels and a round lake."""
    rows, cols = np.mgrid[0:height, 0:width]
    label = np.full((height, width), 2, np.uint8)
    r0, c0 = int(rng.integers(2, 5)), int(width * 0.55) + int(rng.integers(0, 4))
    label[r0 : r0 + height // 2 - 2, c0 : width - 3] = 1
    label[height // 2 + 2 : height - 3, 5 : width // 2 + 4] = 1
    cy, cx = height * 0.3 + rng.uniform(-1, 1), width * 0.25 + rng.uniform(-1, 1)
    radius = min(height, width) * 0.22
    label[np.hypot(rows + 0.5 - cy, cols + 0.5 - cx) < radius] = 0
    return label


def make_tiny_labels() -> np.ndarray:
    """Labels (48 rows x 64 columns, uint8): classes 0, 1, 2; 255 in the lower-right corner."""
    rng = np.random.default_rng(SEED)
    label = _layout(48, 64, rng)
    label[_corner(48, 64, 8, "lr")] = LABEL_NODATA
    return label


def make_tiny_scene(label: np.ndarray) -> np.ndarray:
    """Six bands (uint16 reflectance x 10000) = class signature x per-pixel gain + noise."""
    rng = np.random.default_rng(SEED + 1)
    valid = label != LABEL_NODATA
    cls = np.where(valid, label, 0)
    sig = SIGNATURES_6[cls].transpose(2, 0, 1)
    gain = 1 + 0.04 * _smooth(rng, label.shape, 3.0)  # brightness variation, all bands
    noise = rng.normal(0, 1, sig.shape) * (0.006 * sig + 6)
    img = np.clip(np.rint(sig * gain + noise), 1, 65535).astype(np.uint16)
    img[:, ~valid] = 0
    return img


def make_tiny_scene_13b() -> np.ndarray:
    """Thirteen Sentinel-2 L1C bands (int16 TOA reflectance x 10000), 40 x 40, 0 = nodata."""
    rng = np.random.default_rng(SEED + 2)
    label = _layout(40, 40, rng)
    sig = SIGNATURES_13[label].transpose(2, 0, 1)
    img = sig * (1 + 0.04 * _smooth(rng, label.shape, 3.0)) + rng.normal(0, 6, sig.shape)
    img = np.clip(np.rint(img), 1, 32767).astype(np.int16)
    img[:, _corner(40, 40, 5, "ul")] = 0
    return img


def make_tiny_float() -> np.ndarray:
    """Two Sentinel-1-like bands (float32 backscatter in dB: VV, VH), 32 x 32, NaN = nodata."""
    rng = np.random.default_rng(SEED + 3)
    label = _layout(32, 32, rng)
    sig = SIGNATURES_SAR[label].transpose(2, 0, 1)
    img = (sig + rng.normal(0, 1.0, sig.shape)).astype(np.float32)  # speckle, roughly
    img[:, _corner(32, 32, 5, "ur")] = np.nan
    return img


def labels_to_frame(label: np.ndarray, transform: Affine) -> gpd.GeoDataFrame:
    """Polygons of a label raster (nodata left out) with ``class_id`` and ``class_name``."""
    names = {i: name for i, name, _ in CLASSES}
    geoms, ids = [], []
    for geom, value in shapes(label, mask=label != LABEL_NODATA, transform=transform):
        geoms.append(shape(geom))
        ids.append(int(value))
    order = np.argsort(ids, kind="stable")
    return gpd.GeoDataFrame(
        {
            "class_id": np.asarray(ids, dtype=np.int32)[order],
            "class_name": [names[ids[i]] for i in order],
        },
        geometry=[geoms[i] for i in order],
        crs=CRS.from_epsg(EPSG),
    )


def _write_raster(path: Path, data: np.ndarray, nodata, descriptions, transform, tags=None) -> None:
    profile = {
        "driver": "GTiff",
        "dtype": data.dtype.name,
        "count": data.shape[0],
        "height": data.shape[1],
        "width": data.shape[2],
        "crs": CRS.from_epsg(EPSG),
        "transform": transform,
        "nodata": nodata,
        "compress": "deflate",
        "predictor": 2 if data.dtype.kind in "iu" else 3,
        "interleave": "band",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(descriptions, start=1):
            dst.set_band_description(i, name)
        dst.update_tags(GENERATOR="tests/data/make_fixtures.py", **(tags or {}))


def _write_vector(path: Path, gdf: gpd.GeoDataFrame, driver: str) -> None:
    import pyogrio

    # a fixed timestamp keeps the GeoPackage reproducible; 1 KiB pages keep it small
    options = {"OGR_CURRENT_DATE": "2024-06-07T00:00:00.000Z", "OGR_SQLITE_PRAGMA": "page_size=1024"}
    if path.exists():
        path.unlink()
    pyogrio.set_gdal_config_options(options)
    try:
        kwargs = {"layer": "labels"} if driver == "GPKG" else {}
        gdf.to_file(path, driver=driver, engine="pyogrio", **kwargs)
    finally:
        pyogrio.set_gdal_config_options({key: None for key in options})


def write_all(out_dir: Path) -> dict[str, Path]:
    """Write every fixture into ``out_dir``; returns {file name: path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}

    def p(name: str) -> Path:
        paths[name] = out_dir / name
        return paths[name]

    transform = grid_transform()
    label = make_tiny_labels()
    _write_raster(
        p("tiny_scene.tif"), make_tiny_scene(label), 0, BANDS_6, transform,
        {"REFLECTANCE_SCALE": "0.0001"},
    )
    _write_raster(p("tiny_labels.tif"), label[None], LABEL_NODATA, ("class_id",), transform)
    gdf = labels_to_frame(label, transform)
    _write_vector(p("tiny_labels.gpkg"), gdf, "GPKG")
    _write_vector(p("tiny_labels_4326.geojson"), gdf.to_crs(4326), "GeoJSON")
    _write_raster(
        p("tiny_scene_13b.tif"), make_tiny_scene_13b(), 0, BANDS_13,
        grid_transform((ORIGIN[0] + 2000.0, ORIGIN[1])), {"PROCESSING_LEVEL": "L1C-like TOA"},
    )
    _write_raster(
        p("tiny_float.tif"), make_tiny_float(), float("nan"), BANDS_SAR,
        grid_transform((ORIGIN[0] - 1000.0, ORIGIN[1])), {"UNITS": "dB"},
    )
    doc = {"classes": [{"id": i, "name": n, "color": list(c)} for i, n, c in CLASSES]}
    p("classes.yaml").write_text(
        "# Classes of tiny_labels.* (written by make_fixtures.py); label nodata is 255.\n"
        + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)
    )
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the tiny rs-vit test fixtures.")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    for name, path in write_all(args.out_dir).items():
        print(f"{name:26s} {path.stat().st_size:7d} bytes")


if __name__ == "__main__":
    main()
