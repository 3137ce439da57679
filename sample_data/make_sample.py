"""Generate the bundled synthetic Sentinel-2-like sample scene and its labels.

The scene is a 1024 x 1024 px, 10 m, six-band (B2, B3, B4, B8, B11, B12) landscape in UTM 33N
with five land-cover classes: water, forest, cropland, bare soil and built-up. Everything is
drawn from one seeded :class:`numpy.random.Generator`, so running the script twice writes the
same arrays::

    python sample_data/make_sample.py            # regenerate all outputs, then check them
    python sample_data/make_sample.py --check    # only check the committed outputs

Outputs (beside this script unless ``--out-dir`` is given): ``scene.tif``, ``labels.tif``,
``labels.gpkg``, ``classes.yaml`` and ``preview.png``.

The check reports (1) how well rasterising ``labels.gpkg`` reproduces ``labels.tif`` and (2) what
per-pixel classifiers reach, to show that the scene needs several bands *and* spatial context:

* the best single-band classifier: for each band, every 10-DN value bin is mapped to one class
  (the majority class, or the class of highest likelihood, whichever scores better). Such a
  lookup can express any set of thresholds on that band, and it is fitted and scored on the
  whole scene (in-sample), so it is a generous estimate of single-band thresholding;
* a per-pixel Gaussian classifier (QDA) on all six bands, also fitted in-sample.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import yaml
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize, shapes
from scipy import ndimage
from shapely.geometry import LineString, Polygon, shape

SEED = 20240607
SIZE = 1024  # rows = cols
PIXEL_SIZE = 10.0  # metres
EPSG = 32633  # WGS 84 / UTM zone 33N
ORIGIN = (541_200.0, 5_352_800.0)  # upper-left corner (x, y): Lower Austria, near Melk
IMAGE_NODATA = 0
LABEL_NODATA = 255
REFLECTANCE_SCALE = 10_000  # stored DN = reflectance x 10000

BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
S2_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
WAVELENGTH_NM = (492.4, 559.8, 664.6, 832.8, 1613.7, 2202.4)
NATIVE_RESOLUTION_M = (10, 10, 10, 10, 20, 20)
PSF_SIGMA_PX = 0.6
NOISE_SIGMA = np.array([0.0003, 0.0003, 0.0004, 0.0006, 0.0006, 0.0005])  # reflectance units

CLASSES = (
    (0, "water", (31, 119, 180)),
    (1, "forest", (30, 110, 40)),
    (2, "cropland", (170, 215, 90)),
    (3, "bare_soil", (190, 145, 90)),
    (4, "built_up", (215, 40, 40)),
)
WATER, FOREST, CROPLAND, BARE_SOIL, BUILT_UP = range(5)

# Endmember spectra (surface reflectance, 0..1) in the band order above.
SPECTRA = {
    "water_clear": (0.050, 0.042, 0.026, 0.014, 0.008, 0.005),
    "water_turbid": (0.070, 0.085, 0.078, 0.042, 0.016, 0.009),
    "broadleaf": (0.026, 0.052, 0.030, 0.330, 0.178, 0.086),
    "conifer": (0.020, 0.036, 0.022, 0.215, 0.105, 0.048),
    "crop": (0.032, 0.078, 0.040, 0.420, 0.215, 0.102),
    "crop_dense": (0.025, 0.062, 0.028, 0.470, 0.180, 0.068),
    "grass": (0.038, 0.082, 0.050, 0.360, 0.240, 0.130),
    "soil_dry": (0.085, 0.120, 0.160, 0.245, 0.335, 0.275),
    "soil_wet": (0.052, 0.072, 0.092, 0.148, 0.205, 0.165),
    "gravel": (0.130, 0.150, 0.170, 0.225, 0.300, 0.265),
    "roof_tile": (0.068, 0.088, 0.165, 0.225, 0.295, 0.245),
    "roof_concrete": (0.115, 0.128, 0.140, 0.185, 0.250, 0.225),
    "roof_metal": (0.150, 0.160, 0.168, 0.188, 0.175, 0.150),
    "roof_dark": (0.055, 0.058, 0.062, 0.085, 0.110, 0.100),
    "asphalt": (0.060, 0.066, 0.072, 0.092, 0.115, 0.105),
}


def _spec(name: str) -> np.ndarray:
    return np.asarray(SPECTRA[name], dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], sigma: float, octaves: int = 1
) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation length ``sigma`` px.

    Octaves halve the length scale and the amplitude each time (fractal-ish edges). Large
    scales are drawn on a coarse grid and interpolated, which keeps the script fast.
    """
    out = np.zeros(shape)
    amplitude = 1.0
    for octave in range(octaves):
        s = sigma / 2**octave
        f = max(1, int(s // 4))
        small = rng.standard_normal((shape[0] // f + 3, shape[1] // f + 3))
        small = ndimage.gaussian_filter(small, s / f, mode="wrap")
        field = ndimage.zoom(small, f, order=1)[: shape[0], : shape[1]]
        out += amplitude * (field - field.mean()) / field.std()
        amplitude *= 0.5
    return (out - out.mean()) / out.std()


@dataclass(frozen=True)
class Frame:
    """A rotated local frame (u along, v across) centred on pixel coordinates (cx, cy)."""

    cx: float
    cy: float
    angle: float  # radians

    def rect(self, u0: float, v0: float, u1: float, v1: float) -> Polygon:
        c, s = math.cos(self.angle), math.sin(self.angle)
        pts = [(u0, v0), (u1, v0), (u1, v1), (u0, v1)]
        return Polygon([(self.cx + c * u - s * v, self.cy + s * u + c * v) for u, v in pts])

    def uv(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
        x, y = cols + 0.5 - self.cx, rows + 0.5 - self.cy
        c, s = math.cos(self.angle), math.sin(self.angle)
        return c * x + s * y, -s * x + c * y


def burn(geoms: list, shape: tuple[int, int], values=None, dtype="int32") -> np.ndarray:
    """Rasterise pixel-coordinate geometries (x = column, y = row); 0 where nothing is burnt."""
    if not geoms:
        return np.zeros(shape, dtype=dtype)
    items = list(zip(geoms, values)) if values is not None else [(g, 1) for g in geoms]
    return rasterize(items, out_shape=shape, fill=0, dtype=dtype)


def remove_small(mask: np.ndarray, min_px: int) -> np.ndarray:
    """Drop connected components smaller than ``min_px`` and fill holes smaller than it."""
    lab, n = ndimage.label(mask)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    keep = sizes >= min_px
    keep[0] = False
    mask = keep[lab]
    lab, n = ndimage.label(~mask)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    holes = sizes < min_px
    holes[0] = False
    return mask | holes[lab]


def meander(
    rng: np.random.Generator, start: tuple[float, float], heading: float, length: int
) -> LineString:
    """A river-like centreline: unit steps whose heading wanders (smoothed random curvature)."""
    curvature = ndimage.gaussian_filter1d(rng.standard_normal(length), 40, mode="nearest")
    curvature *= 0.035 / np.abs(curvature).max()
    theta = heading + np.cumsum(curvature)
    # steer most of the accumulated turn back out, so the river keeps its general direction
    theta -= np.linspace(0, 1, length) * (theta[-1] - heading) * 0.8
    x = start[0] + np.cumsum(np.cos(theta))
    y = start[1] + np.cumsum(np.sin(theta))
    return LineString(np.column_stack([x, y])[::4])


def wiggly_line(rng: np.random.Generator, pts: list[tuple[float, float]], jitter: float, n: int):
    """A smooth polyline through ``pts`` with ``n`` interpolated, laterally jittered vertices."""
    pts_arr = np.asarray(pts, dtype=float)
    seg = np.linalg.norm(np.diff(pts_arr, axis=0), axis=1)
    t = np.concatenate([[0], np.cumsum(seg)]) / seg.sum()
    tt = np.linspace(0, 1, n)
    x, y = np.interp(tt, t, pts_arr[:, 0]), np.interp(tt, t, pts_arr[:, 1])
    offset = ndimage.gaussian_filter1d(rng.standard_normal(n), n / 12, mode="nearest")
    offset *= jitter / (np.abs(offset).max() + 1e-9) * np.sin(np.pi * tt)  # fixed end points
    dx, dy = np.gradient(x), np.gradient(y)
    norm = np.hypot(dx, dy) + 1e-9
    return LineString(np.column_stack([x - dy / norm * offset, y + dx / norm * offset]))


# --------------------------------------------------------------------------------------------
# The landscape
# --------------------------------------------------------------------------------------------


def nodata_mask(shape: tuple[int, int]) -> np.ndarray:
    """A straight swath edge cutting off the upper-right corner (about 5 % of the scene)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return cols + 0.5 > 858 + 0.255 * (rows + 0.5)


def field_parcels(rng: np.random.Generator, shape: tuple[int, int]):
    """Rectangular parcels on a rotated cadastral grid, with some long narrow strip fields."""
    frame = Frame(shape[1] / 2, shape[0] / 2, math.radians(rng.uniform(8, 16)))
    half = 0.75 * math.hypot(*shape)
    rects: list[tuple[float, float, float, float]] = []
    stack = [(-half, -half, half, half)]
    while stack:
        u0, v0, u1, v1 = stack.pop()
        du, dv = u1 - u0, v1 - v0
        big = max(du, dv)
        if big < 60 or (big < 150 and rng.random() < 0.35):
            if min(du, dv) > 40 and max(du, dv) > 60 and rng.random() < 0.18:
                # a block of strip fields (common in Central Europe)
                width = rng.uniform(8, 14)
                if du > dv:
                    edges = np.arange(u0, u1, width)
                    rects += [(a, v0, min(a + width, u1), v1) for a in edges]
                else:
                    edges = np.arange(v0, v1, width)
                    rects += [(u0, a, u1, min(a + width, v1)) for a in edges]
            else:
                rects.append((u0, v0, u1, v1))
            continue
        t = rng.uniform(0.3, 0.7)
        if du >= dv:
            stack += [(u0, v0, u0 + t * du, v1), (u0 + t * du, v0, u1, v1)]
        else:
            stack += [(u0, v0, u1, v0 + t * dv), (u0, v0 + t * dv, u1, v1)]
    polys = [frame.rect(*r) for r in rects]
    ids = burn(polys, shape, values=range(1, len(polys) + 1))
    # the track/edge between parcels: pixels whose right or lower neighbour is another parcel
    edge = np.zeros(shape, bool)
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    edge[:-1, :] |= ids[:-1, :] != ids[1:, :]
    return ids, len(polys), frame, edge


@dataclass
class Town:
    cx: float
    cy: float
    radius: float
    kind: str  # "town", "village" or "industrial"


def town_layout(rng: np.random.Generator, town: Town, shape: tuple[int, int], avoid: np.ndarray):
    """Blocks, streets and buildings of one settlement.

    Returns the built-up footprint, building polygons with (material, shadow length) and the
    block polygons (for gardens).
    """
    frame = Frame(town.cx, town.cy, math.radians(rng.uniform(-25, 25)))
    n = int(town.radius // 14) + 2
    sizes_u = rng.uniform(18, 32, 2 * n) if town.kind != "industrial" else rng.uniform(30, 55, 2 * n)
    sizes_v = rng.uniform(16, 28, 2 * n) if town.kind != "industrial" else rng.uniform(25, 45, 2 * n)
    edges_u = np.concatenate([[0], np.cumsum(sizes_u)]) - sizes_u.sum() / 2
    edges_v = np.concatenate([[0], np.cumsum(sizes_v)]) - sizes_v.sum() / 2
    wobble = rng.uniform(0, 2 * np.pi, 3)
    footprint, buildings, blocks = [], [], []
    street = 1.0  # half street width in px
    for i in range(2 * n):
        for j in range(2 * n):
            u0, u1, v0, v1 = edges_u[i], edges_u[i + 1], edges_v[j], edges_v[j + 1]
            uc, vc = (u0 + u1) / 2, (v0 + v1) / 2
            ang = math.atan2(vc, uc)
            r = town.radius * (1 + 0.25 * sum(math.sin(k * ang + w) / k for k, w in enumerate(wobble, 2)))
            if town.kind == "industrial":
                r = town.radius * 1.25
                inside = abs(uc) < r and abs(vc) < 0.7 * r
            else:
                inside = math.hypot(uc, vc) < r
            if not inside:
                continue
            block = frame.rect(u0 + street, v0 + street, u1 - street, v1 - street)
            cx, cy = block.centroid.x, block.centroid.y
            if not (0 <= cx < shape[1] and 0 <= cy < shape[0]) or avoid[int(cy), int(cx)]:
                continue
            footprint.append(frame.rect(u0, v0, u1, v1))
            blocks.append(block)
            dist = math.hypot(uc, vc) / max(town.radius, 1)
            inner = (u0 + street, v0 + street, u1 - street, v1 - street)
            buildings += _block_buildings(rng, frame, inner, town.kind, dist)
    return footprint, buildings, blocks


def _block_buildings(rng, frame: Frame, box, kind: str, dist: float):
    """Buildings of one block as (polygon, material, shadow length in px)."""
    u0, v0, u1, v1 = box
    out = []
    if kind == "industrial":
        # a few large halls, the rest is yard (asphalt, added later) and bits of verge
        u = u0 + rng.uniform(1, 3)
        while u < u1 - 6:
            length = rng.uniform(6, 18)
            depth = rng.uniform(0.45, 0.85) * (v1 - v0)
            v = v0 + rng.uniform(1, max(1.5, (v1 - v0) - depth - 1))
            mat = rng.choice(["roof_metal", "roof_concrete", "roof_dark"], p=[0.5, 0.35, 0.15])
            out.append((frame.rect(u, v, min(u + length, u1 - 1), v + depth), mat, 1))
            u += length + rng.uniform(2, 6)
        return out
    if kind == "town" and dist < 0.55:
        # dense centre: perimeter block of 3-4 px deep buildings around a courtyard
        d = rng.uniform(3, 4.5)
        mats = ["roof_tile", "roof_concrete", "roof_dark", "roof_metal"]
        p = [0.55, 0.25, 0.12, 0.08]
        for side in range(4):
            if side == 0:
                segs = [(u0, v0, u1, v0 + d)]
            elif side == 1:
                segs = [(u0, v1 - d, u1, v1)]
            elif side == 2:
                segs = [(u0, v0 + d, u0 + d, v1 - d)]
            else:
                segs = [(u1 - d, v0 + d, u1, v1 - d)]
            for a0, b0, a1, b1 in segs:
                # split each wing into houses with their own roofs
                along_u = (a1 - a0) >= (b1 - b0)
                lo, hi = (a0, a1) if along_u else (b0, b1)
                x = lo
                while x < hi - 0.5:
                    w = rng.uniform(3, 8)
                    x1 = min(x + w, hi)
                    rect = (x, b0, x1, b1) if along_u else (a0, x, a1, x1)
                    out.append((frame.rect(*rect), rng.choice(mats, p=p), int(rng.integers(1, 3))))
                    x = x1
        return out
    # residential: detached houses with gardens
    spacing = rng.uniform(4.5, 6.5)
    for uu in np.arange(u0 + 1, u1 - 3, spacing):
        for vv in np.arange(v0 + 1, v1 - 3, spacing):
            if rng.random() < 0.25:
                continue
            w, h = rng.uniform(2, 3.6), rng.uniform(2, 3.6)
            du, dv = rng.uniform(0, spacing - w), rng.uniform(0, spacing - h)
            mat = rng.choice(["roof_tile", "roof_concrete", "roof_dark"], p=[0.65, 0.25, 0.1])
            out.append((frame.rect(uu + du, vv + dv, uu + du + w, vv + dv + h), mat, 1))
    return out


class _Canvas:
    """The scene being drawn: reflectance (bands, H, W), labels (H, W) and the shared RNG."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        self.rng = rng
        self.shape = (size, size)
        self.refl = np.zeros((len(BANDS), size, size))
        self.label = np.full(self.shape, CROPLAND, np.uint8)
        self.rows, self.cols = np.mgrid[0:size, 0:size]
        # fine, band-correlated texture (tree crowns, roof detail), shared by several layers
        canopy = ndimage.gaussian_filter(rng.standard_normal(self.shape), 1.1)
        self.canopy = canopy / canopy.std()

    def gains(self, n: int, spread: float, bright: float) -> np.ndarray:
        """Per-object multiplicative offsets (n, bands): a brightness plus a per-band part."""
        nb = len(BANDS)
        return np.exp(self.rng.normal(0, bright, (n, 1)) + self.rng.normal(0, spread, (n, nb)))

    def paint(self, mask: np.ndarray, spec: np.ndarray, cls: int | None) -> None:
        self.refl[:, mask] = spec[:, mask] if spec.ndim == 3 else spec[:, None]
        if cls is not None:
            self.label[mask] = cls


def _col(name: str) -> np.ndarray:
    return _spec(name)[:, None, None]


def _draw_fields(cv: _Canvas) -> None:
    """Parcels of crops (sparse to closed cover, two crop types), meadows and bare soil."""
    rng, shape = cv.rng, cv.shape
    parcel, n_parcels, frame, edge = field_parcels(rng, shape)
    u, v = frame.uv(shape)
    n = n_parcels + 1
    kind = rng.choice(3, size=n, p=[0.52, 0.16, 0.32])  # crop, meadow, bare soil
    # vegetation cover: crops from sparse to closed, bare soil with some weeds / stubble
    cover = np.where(kind == 2, rng.uniform(0.0, 0.25, n), rng.uniform(0.15, 1.0, n))
    cover[kind == 1] = rng.uniform(0.6, 1.0, (kind == 1).sum())
    crop_type = rng.uniform(0, 1, n)  # 0 = cereal-like, 1 = maize-like (dense, dark)
    wetness = rng.beta(2, 2.5, n)  # soil moisture
    gain = cv.gains(n, 0.07, 0.11)
    stripe_period = rng.uniform(3.0, 6.0, n)
    stripe_dir = rng.integers(0, 2, n)
    stripe_amp = np.where((kind == 1) | (rng.random(n) < 0.4), 0.0, rng.uniform(0.01, 0.03, n))
    moist = smooth_noise(rng, shape, 12, octaves=2)

    k, ct = kind[parcel], crop_type[parcel]
    crop = (1 - ct) * _col("crop") + ct * _col("crop_dense")
    veg = np.where(k == 1, _col("grass"), crop)
    w = np.clip(wetness[parcel] + 0.15 * moist, 0, 1)
    soil = (1 - w) * _col("soil_dry") + w * _col("soil_wet")
    cov = np.clip(cover[parcel] + 0.06 * moist, 0, 1)
    refl = cov * veg + (1 - cov) * soil
    stripes = np.sin(2 * np.pi * np.where(stripe_dir[parcel] == 0, u, v) / stripe_period[parcel])
    refl *= 1 + stripe_amp[parcel] * stripes
    refl *= np.moveaxis(gain[parcel], -1, 0)
    # dirt tracks along half of the parcel edges (the label stays the parcel's)
    track = edge & (rng.random(n) < 0.5)[parcel]
    refl[:, track] = 0.55 * refl[:, track] + 0.45 * 0.9 * _spec("soil_dry")[:, None]
    cv.refl[:] = refl
    cv.label[:] = np.where(k == 2, BARE_SOIL, CROPLAND)


def _draw_forest(cv: _Canvas) -> np.ndarray:
    """Organic forest patches (thresholded fractal noise), mixed conifer / broadleaf stands."""
    rng, shape = cv.rng, cv.shape
    forest = remove_small(smooth_noise(rng, shape, 55, octaves=3) > 0.62, 250)
    lab, n = ndimage.label(forest)
    conifer_share = rng.uniform(0.0, 1.0, n + 1)
    mixture = np.clip(conifer_share[lab] + 0.35 * smooth_noise(rng, shape, 8), 0, 1)
    spec = mixture * _col("conifer") + (1 - mixture) * _col("broadleaf")
    spec = spec * (1 + 0.065 * cv.canopy) * np.moveaxis(cv.gains(n + 1, 0.05, 0.07)[lab], -1, 0)
    cv.paint(forest, spec, FOREST)
    return forest


def _draw_pits(cv: _Canvas) -> list[tuple[np.ndarray, float, float, float]]:
    """Two gravel pits (bare soil); the first one later gets a pit lake."""
    rng, shape = cv.rng, cv.shape
    pits = []
    for cx, cy, r in (
        (rng.uniform(150, 350), rng.uniform(650, 900), 38),
        (rng.uniform(600, 800), rng.uniform(750, 950), 30),
    ):
        dist = np.hypot(cv.cols - cx, cv.rows - cy)
        blob = remove_small(dist < r * (1 + 0.3 * smooth_noise(rng, shape, 10)), 200)
        mix = np.clip(0.6 + 0.25 * smooth_noise(rng, shape, 6), 0, 1)
        spec = mix * _col("gravel") + (1 - mix) * _col("soil_dry")
        spec = spec * (1 + 0.06 * smooth_noise(rng, shape, 2.0))
        cv.paint(blob, spec, BARE_SOIL)
        pits.append((blob, cx, cy, r))
    return pits


def _draw_settlements(cv: _Canvas, towns: list[Town], avoid: np.ndarray) -> np.ndarray:
    """Towns, villages and an industrial estate: the whole built-up footprint is labelled
    built-up, although it holds roofs (soil-like), gardens (vegetation) and shadows (dark)."""
    rng, shape = cv.rng, cv.shape
    footprints, buildings, blocks, industrial_blocks = [], [], [], []
    for t in towns:
        f, b, bl = town_layout(rng, t, shape, avoid)
        footprints += f
        buildings += b
        blocks += bl
        if t.kind == "industrial":
            industrial_blocks += bl
    urban = burn(footprints, shape).astype(bool)
    block_mask = burn(blocks, shape).astype(bool) & urban
    # streets (asphalt) around blocks; gardens of grass, trees and bare patches inside them
    asphalt = _col("asphalt") * (1 + 0.05 * smooth_noise(rng, shape, 3))
    garden_mix = smooth_noise(rng, shape, 1.5)
    grass = _col("grass") * (0.9 + 0.1 * smooth_noise(rng, shape, 4))
    trees = _col("broadleaf") * (1 + 0.12 * cv.canopy)
    bare = 0.5 * grass + 0.5 * _col("soil_dry")
    yard = np.where(garden_mix > 0.5, trees, np.where(garden_mix > -0.6, grass, bare))
    spec = np.where(block_mask[None], yard, asphalt)
    # industrial estates: block interiors are mostly paved (yards, car parks)
    paved = burn(industrial_blocks, shape).astype(bool) & (garden_mix < 0.9)
    spec = np.where(paved[None], asphalt * 1.15, spec)

    mats = sorted(SPECTRA)
    bid = burn([b[0] for b in buildings], shape, values=range(1, len(buildings) + 1))
    bid[~urban] = 0
    mat_idx = np.array([0] + [mats.index(b[1]) for b in buildings])
    height = np.array([0] + [b[2] for b in buildings])
    gain = cv.gains(len(buildings) + 1, 0.04, 0.10)
    mat_spec = np.stack([_spec(m) for m in mats])  # (materials, bands)
    roof = (mat_spec[mat_idx[bid]] * gain[bid]).transpose(2, 0, 1) * (1 + 0.04 * cv.canopy)
    is_b = bid > 0
    spec = np.where(is_b[None], roof, spec)
    # shadows: the sun is in the south-south-east, shadows fall north (up) by 1-2 px
    hmap = height[bid]
    shadow = np.zeros(shape, bool)
    for dy in (1, 2):
        shadow[:-dy, :] |= hmap[dy:, :] >= dy
    shadow[:-1, :-1] |= hmap[1:, 1:] >= 1  # and a little to the west
    shadow &= ~is_b
    spec = np.where(shadow[None], spec * _SHADE, spec)
    cv.paint(urban, spec * (1 + 0.03 * smooth_noise(rng, shape, 40)), BUILT_UP)
    return urban


_SHADE = np.array([0.45, 0.40, 0.36, 0.30, 0.30, 0.30])[:, None, None]  # shadow / sunlit


def _draw_roads(cv: _Canvas, towns: list[Town]) -> np.ndarray:
    """Main roads (2 px of asphalt, built-up) linking the settlements."""
    t = towns
    paths = [
        [(-5, t[2].cy + 30), (t[2].cx, t[2].cy), (t[0].cx, t[0].cy), (t[4].cx, t[4].cy),
         (t[1].cx, t[1].cy), (cv.shape[1] + 5, t[1].cy + 60)],
        [(t[0].cx - 40, cv.shape[0] + 5), (t[3].cx, t[3].cy), (t[1].cx, t[1].cy)],
        [(t[0].cx + 20, -5), (t[0].cx, t[0].cy)],
    ]
    lines = [wiggly_line(cv.rng, p, 25, 400).buffer(1.0, cap_style="flat") for p in paths]
    road = burn(lines, cv.shape).astype(bool)
    spec = _col("asphalt") * (1 + 0.06 * smooth_noise(cv.rng, cv.shape, 30)) * (1 + 0.04 * cv.canopy)
    cv.paint(road, spec, BUILT_UP)
    return road


def _draw_water(cv: _Canvas, urban: np.ndarray, road: np.ndarray, pit) -> np.ndarray:
    """Lakes, a pit lake, a turbid meandering river (bridges keep the roads)."""
    rng, shape = cv.rng, cv.shape
    lakes = remove_small((smooth_noise(rng, shape, 40, octaves=2) > 1.75) & ~urban, 150)
    blob, pcx, pcy, pr = pit
    dist = np.hypot(cv.cols - pcx, cv.rows - pcy)
    pit_lake = (dist < 0.55 * pr * (1 + 0.2 * smooth_noise(rng, shape, 8))) & blob
    river = burn([meander(rng, (-10.0, 540.0), math.radians(8), 1500).buffer(5.5)], shape).astype(bool)
    water = (lakes | pit_lake | river) & ~(road & river)
    lab, n = ndimage.label(water)
    turbidity = rng.uniform(0.0, 0.7, n + 1)
    turbidity[np.unique(lab[river & water])] = rng.uniform(0.7, 1.0)  # the river is turbid
    tb = np.clip(turbidity[lab] + 0.15 * smooth_noise(rng, shape, 15), 0, 1)
    spec = (1 - tb) * _col("water_clear") + tb * _col("water_turbid")
    # shallow / mixed pixels along the shore see the bottom
    shallow = np.clip(1.0 - (ndimage.distance_transform_edt(water) - 1) / 3.0, 0, 1) * 0.35
    spec = (1 - shallow) * spec + shallow * _col("soil_wet")
    spec *= np.moveaxis(cv.gains(n + 1, 0.05, 0.05)[lab], -1, 0)
    cv.paint(water, spec, WATER)
    return water


def generate(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Draw the scene. Returns reflectance (6, H, W) float32 (0 = nodata) and labels (H, W) uint8.

    The layout (town positions, river, swath edge) is laid out for ``SIZE`` = 1024 px.
    """
    size = SIZE
    rng = np.random.default_rng(seed)
    cv = _Canvas(rng, size)
    shape = cv.shape
    no = nodata_mask(shape)

    _draw_fields(cv)
    forest = _draw_forest(cv)
    pits = _draw_pits(cv)
    towns = [
        Town(rng.uniform(330, 420), rng.uniform(300, 380), 115, "town"),
        Town(rng.uniform(720, 800), rng.uniform(560, 640), 70, "town"),
        Town(rng.uniform(120, 200), rng.uniform(120, 180), 40, "village"),
        Town(rng.uniform(520, 560), rng.uniform(840, 880), 40, "village"),
        Town(rng.uniform(560, 620), rng.uniform(380, 430), 55, "industrial"),
    ]
    urban = _draw_settlements(cv, towns, no)
    road = _draw_roads(cv, towns)
    water = _draw_water(cv, urban, road, pits[0])
    refl = cv.refl

    # forest edges cast 1-3 px shadows to the north onto whatever lies there (label unchanged)
    trees = forest & (cv.label == FOREST)
    cast = np.zeros(shape, bool)
    for dy in (1, 2, 3):
        cast[:-dy, :] |= trees[dy:, :]
    cast &= ~trees
    refl[:, cast] *= _SHADE[:, 0, :] * 1.3

    # terrain shading (not on water), haze (mostly blue), the sensor's PSF and noise
    elev = smooth_noise(rng, shape, 70, octaves=3)
    gy, gx = np.gradient(elev * 60.0)
    hill = 1 + np.clip(0.5 * (-0.35 * gx + 0.94 * gy), -0.12, 0.12)  # lit from the south-south-east
    hill[water] = 1.0
    refl *= hill
    haze = 0.5 + 0.5 * smooth_noise(rng, shape, 160)
    refl += np.array([0.012, 0.008, 0.005, 0.002, 0.0, 0.0])[:, None, None] * haze
    refl = ndimage.gaussian_filter(refl, (0, PSF_SIGMA_PX, PSF_SIGMA_PX))
    for b, res in enumerate(NATIVE_RESOLUTION_M):
        if res == 20:
            # 20 m bands: 2 x 2 block means plus noise, then repeated onto the 10 m grid
            coarse = refl[b].reshape(size // 2, 2, size // 2, 2).mean(axis=(1, 3))
            coarse += rng.normal(0, NOISE_SIGMA[b], coarse.shape)
            refl[b] = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)
        else:
            refl[b] += rng.normal(0, NOISE_SIGMA[b], shape)

    refl[:, no] = 0.0
    label = cv.label
    label[no] = LABEL_NODATA
    return refl.astype(np.float32), label


def to_dn(refl: np.ndarray, nodata: np.ndarray) -> np.ndarray:
    """Reflectance -> uint16 DN (x 10000); valid pixels are at least 1 so 0 stays nodata."""
    dn = np.clip(np.rint(refl * REFLECTANCE_SCALE), 1, 65535).astype(np.uint16)
    dn[:, nodata] = IMAGE_NODATA
    return dn


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def grid_transform() -> Affine:
    return Affine(PIXEL_SIZE, 0.0, ORIGIN[0], 0.0, -PIXEL_SIZE, ORIGIN[1])


def write_scene(path: Path, dn: np.ndarray) -> None:
    profile = {
        "driver": "GTiff",
        "dtype": "uint16",
        "count": dn.shape[0],
        "height": dn.shape[1],
        "width": dn.shape[2],
        "crs": CRS.from_epsg(EPSG),
        "transform": grid_transform(),
        "nodata": IMAGE_NODATA,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "zlevel": 9,
        "predictor": 2,
        "interleave": "band",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn)
        dst.scales = (1 / REFLECTANCE_SCALE,) * dn.shape[0]
        dst.offsets = (0.0,) * dn.shape[0]
        dst.update_tags(
            TITLE="rs-vit synthetic sample scene",
            DESCRIPTION=(
                "Synthetic Sentinel-2-like L2A surface reflectance (x 10000), 10 m; "
                "swir16/swir22 simulated at 20 m and resampled to 10 m"
            ),
            SENSOR="synthetic (Sentinel-2 MSI band set)",
            PROCESSING_LEVEL="L2A-like surface reflectance",
            REFLECTANCE_SCALE=str(1 / REFLECTANCE_SCALE),
            GENERATOR="sample_data/make_sample.py",
            SEED=str(SEED),
        )
        for i, name in enumerate(BANDS, start=1):
            dst.set_band_description(i, name)
            dst.update_tags(
                i,
                NAME=name,
                SENTINEL2_BAND=S2_BANDS[i - 1],
                CENTRAL_WAVELENGTH_NM=str(WAVELENGTH_NM[i - 1]),
                NATIVE_RESOLUTION_M=str(NATIVE_RESOLUTION_M[i - 1]),
                SCALE=str(1 / REFLECTANCE_SCALE),
            )


def write_labels(path: Path, label: np.ndarray) -> None:
    profile = {
        "driver": "GTiff",
        "dtype": "uint8",
        "count": 1,
        "height": label.shape[0],
        "width": label.shape[1],
        "crs": CRS.from_epsg(EPSG),
        "transform": grid_transform(),
        "nodata": LABEL_NODATA,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "zlevel": 9,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(label, 1)
        dst.set_band_description(1, "class_id")
        dst.update_tags(
            GENERATOR="sample_data/make_sample.py",
            CLASSES=", ".join(f"{i}={name}" for i, name, _ in CLASSES),
        )
        cmap = {i: (*rgb, 255) for i, _, rgb in CLASSES}
        cmap[LABEL_NODATA] = (0, 0, 0, 0)
        dst.write_colormap(1, cmap)


def labels_to_frame(label: np.ndarray, transform: Affine, crs: CRS) -> gpd.GeoDataFrame:
    """Polygonise a label raster (nodata excluded) into a GeoDataFrame, one row per polygon."""
    names = {i: name for i, name, _ in CLASSES}
    geoms, ids = [], []
    for geom, value in shapes(label, mask=label != LABEL_NODATA, transform=transform, connectivity=4):
        geoms.append(shape(geom))
        ids.append(int(value))
    gdf = gpd.GeoDataFrame(
        {"class_id": np.asarray(ids, dtype=np.int32), "class_name": [names[i] for i in ids]},
        geometry=geoms,
        crs=crs,
    )
    return gdf.sort_values(["class_id"], kind="stable").reset_index(drop=True)


def write_vector(path: Path, gdf: gpd.GeoDataFrame) -> None:
    import pyogrio

    # a fixed timestamp keeps the GeoPackage byte-for-byte reproducible
    options = {"OGR_CURRENT_DATE": "2024-06-07T00:00:00.000Z"}
    if path.exists():
        path.unlink()
    pyogrio.set_gdal_config_options(options)
    try:
        gdf.to_file(path, layer="labels", driver="GPKG", engine="pyogrio")
    finally:
        pyogrio.set_gdal_config_options({key: None for key in options})


def write_classes(path: Path) -> None:
    doc = {"classes": [{"id": i, "name": name, "color": list(rgb)} for i, name, rgb in CLASSES]}
    header = (
        "# Classes of sample_data/labels.tif and labels.gpkg (written by make_sample.py).\n"
        f"# Label nodata (outside the swath) is {LABEL_NODATA}.\n"
    )
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)
    path.write_text(header + text)


def write_preview(path: Path, dn: np.ndarray, label: np.ndarray) -> None:
    """RGB composite (2-98 % stretch) next to the colour label map, 2x downsampled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from PIL import Image

    valid = label != LABEL_NODATA
    rgb = np.moveaxis(dn[[2, 1, 0]].astype(float), 0, -1)
    lo, hi = np.percentile(rgb[valid], (2, 98))  # one stretch for the three bands keeps the hues
    rgb = np.clip((rgb - lo) / (hi - lo), 0, 1)
    rgb[~valid] = 1.0
    h, w = label.shape
    rgb = rgb.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    colours = np.full((256, 3), 1.0)
    for i, _, c in CLASSES:
        colours[i] = np.asarray(c) / 255
    lab = colours[label[::2, ::2]]

    fig, axes = plt.subplots(1, 2, figsize=(10.4, 5.6), dpi=100)
    titles = ("scene.tif: red, green, blue (2-98 % stretch)", "labels.tif")
    for ax, img, title in zip(axes, (rgb, lab), titles):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    handles = [Patch(color=np.asarray(c) / 255, label=f"{i} {n}") for i, n, c in CLASSES]
    fig.legend(handles=handles, loc="lower center", ncol=len(CLASSES), fontsize=9, frameon=False)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.94, bottom=0.07, wspace=0.03)
    fig.savefig(path)
    plt.close(fig)
    img = Image.open(path).convert("RGB")
    # a 256-colour palette keeps the PNG small
    img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(path, optimize=True)


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def miou(pred: np.ndarray, truth: np.ndarray, n_classes: int) -> tuple[float, np.ndarray]:
    cm = np.bincount(truth * n_classes + pred, minlength=n_classes**2).reshape(n_classes, n_classes)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    iou = inter / np.maximum(union, 1)
    return float(iou.mean()), iou


def single_band_baseline(dn: np.ndarray, label: np.ndarray, bin_dn: int = 10):
    """Best per-pixel single-band classifier: a lookup from 10-DN bins to classes, per band.

    Two decision rules are tried for each band (majority class per bin, and highest class
    likelihood per bin, which favours small classes); the better mIoU is kept. Fitted and scored
    on all valid pixels of the scene, so the numbers are optimistic.
    """
    n = len(CLASSES)
    valid = label != LABEL_NODATA
    y = label[valid].astype(np.int64)
    results = {}
    for b, name in enumerate(BANDS):
        x = dn[b][valid].astype(np.int64) // bin_dn
        nbins = int(x.max()) + 1
        counts = np.bincount(x * n + y, minlength=nbins * n).reshape(nbins, n).astype(float)
        best = (-1.0, None)
        for rule in ("majority", "likelihood"):
            score = counts if rule == "majority" else counts / np.maximum(counts.sum(0), 1)
            lut = score.argmax(1)
            m, iou = miou(lut[x], y, n)
            if m > best[0]:
                best = (m, iou, rule)
        results[name] = best
    return results


def qda_baseline(dn: np.ndarray, label: np.ndarray, sample: int = 200_000, seed: int = 0):
    """Per-pixel Gaussian (QDA) classifier on all bands, fitted on a sample, scored on all."""
    n = len(CLASSES)
    valid = label != LABEL_NODATA
    X = dn[:, valid].T.astype(np.float64) / REFLECTANCE_SCALE
    y = label[valid].astype(np.int64)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(y), size=min(sample, len(y)), replace=False)
    logp = np.empty((len(y), n))
    for c in range(n):
        xc = X[idx][y[idx] == c]
        mu = xc.mean(0)
        cov = np.cov(xc, rowvar=False) + 1e-8 * np.eye(X.shape[1])
        inv = np.linalg.inv(cov)
        d = X - mu
        maha = np.einsum("ij,jk,ik->i", d, inv, d)
        # equal priors (better mIoU for small classes than the empirical ones)
        logp[:, c] = -0.5 * (maha + np.linalg.slogdet(cov)[1])
    return miou(logp.argmax(1), y, n)


def roundtrip_agreement(gpkg: Path, label: np.ndarray, transform: Affine) -> tuple[float, int]:
    """Fraction of pixels (all of them, nodata included) equal after vector -> raster."""
    gdf = gpd.read_file(gpkg, engine="pyogrio")
    burnt = rasterize(
        zip(gdf.geometry, gdf["class_id"].astype(int)),
        out_shape=label.shape,
        transform=transform,
        fill=LABEL_NODATA,
        dtype="uint8",
        all_touched=False,
    )
    return float((burnt == label).mean()), len(gdf)


def run_checks(out_dir: Path) -> dict:
    with rasterio.open(out_dir / "scene.tif") as src:
        dn = src.read()
        assert src.descriptions == BANDS, src.descriptions
    with rasterio.open(out_dir / "labels.tif") as src:
        label = src.read(1)
        transform = src.transform
    report: dict = {}
    agree, n_poly = roundtrip_agreement(out_dir / "labels.gpkg", label, transform)
    report["roundtrip_agreement"] = agree
    print(f"labels.gpkg ({n_poly} polygons) rasterised (all_touched=False) vs labels.tif: {agree:.6%} equal")
    valid = label != LABEL_NODATA
    freq = np.bincount(label[valid], minlength=len(CLASSES)) / valid.sum()
    print("class share:", ", ".join(f"{name} {f:.1%}" for (_, name, _), f in zip(CLASSES, freq)))
    print(f"nodata: {1 - valid.mean():.1%} of the scene; image nodata == label nodata:",
          bool(((dn == IMAGE_NODATA).all(0) == ~valid).all()))
    sb = single_band_baseline(dn, label)
    print("best per-pixel single-band classifier (10-DN bins -> class, in-sample):")
    for name, (m, iou, rule) in sb.items():
        print(f"  {name:7s} mIoU {m:.3f} ({rule}) IoU per class " + " ".join(f"{v:.2f}" for v in iou))
    best = max(sb.items(), key=lambda kv: kv[1][0])
    report["single_band_best"] = (best[0], best[1][0])
    print(f"  -> best single band: {best[0]} with mIoU {best[1][0]:.3f}")
    m, iou = qda_baseline(dn, label)
    report["qda_all_bands"] = m
    print(f"per-pixel Gaussian (QDA) classifier on all 6 bands: mIoU {m:.3f}, IoU per class "
          + " ".join(f"{v:.2f}" for v in iou))
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--check", action="store_true", help="only check the existing outputs")
    args = parser.parse_args(argv)
    out = args.out_dir
    if not args.check:
        t0 = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        refl, label = generate()
        dn = to_dn(refl, label == LABEL_NODATA)
        write_scene(out / "scene.tif", dn)
        write_labels(out / "labels.tif", label)
        write_vector(out / "labels.gpkg", labels_to_frame(label, grid_transform(), CRS.from_epsg(EPSG)))
        write_classes(out / "classes.yaml")
        write_preview(out / "preview.png", dn, label)
        print(f"wrote {out} in {time.perf_counter() - t0:.1f} s")
        for name in ("scene.tif", "labels.tif", "labels.gpkg", "classes.yaml", "preview.png"):
            print(f"  {name:13s} {(out / name).stat().st_size / 1e6:6.2f} MB")
    run_checks(out)


if __name__ == "__main__":
    main()
