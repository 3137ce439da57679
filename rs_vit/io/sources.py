"""Where imagery comes from: one seam that turns what a user gives as a scene into a raster.

A scene can be given as

- a multi-band raster (GeoTIFF, COG, JPEG 2000, a GDAL ``.vrt``…): used as it is;
- a folder, or a list, of single-band files whose band is named by the file name: Sentinel-2
  (``…_B02.jp2``, ``…_B8A_20m.tif``, ``B02.tif``), Landsat Collection 2 (``LC09_…_SR_B4.TIF``,
  ``…_QA_PIXEL.TIF``), or a regular expression of the user's with a ``band`` group;
- a Sentinel-2 SAFE folder (``GRANULE/*/IMG_DATA[/R10m|R20m|R60m]``);
- a STAC item (a JSON file or URL) whose assets are single bands (named by ``eo:bands`` common
  names, or by their keys);
- a remote file: ``https://``, ``http://``, ``/vsicurl/``, ``s3://`` (→ ``/vsis3/``), ``gs://``
  (→ ``/vsigs/``), read by GDAL with HTTP range requests, never downloaded whole.

:func:`resolve_scene` returns a local path that rasterio opens: the input itself for a local
raster, else a small GDAL VRT (written to a per-process temporary folder, no pixels copied) that
stacks the bands **by name**, resampled on the fly onto one grid — the finest band's (default),
a named band's, or a resolution in CRS units — with bilinear (or the chosen) resampling for
reflectance and nearest for masks and classes (``SCL``, ``QA_PIXEL``…). Every band carries its
canonical name (:mod:`rs_vit.io.bands`) as its description, so band matching works unchanged,
and outputs derived from the VRT are written on its grid.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError

from rs_vit.errors import ConfigError, InputError
from rs_vit.io.bands import SENSOR_PRESETS, normalize_name, suggest

#: URL schemes and GDAL virtual-file-system prefixes read remotely.
REMOTE_PREFIXES = ("http://", "https://", "/vsicurl/", "s3://", "/vsis3/", "gs://", "/vsigs/",
                   "/vsiaz/", "/vsiadls/", "/vsiswift/")

#: GDAL settings applied (as defaults the user's environment overrides) when a remote input is
#: read: no directory listing on open (a listing of a bucket is slow and useless here), retries
#: of transient HTTP errors, and a larger cache of downloaded ranges.
REMOTE_DEFAULTS: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "GDAL_HTTP_TIMEOUT": "60",
    "CPL_VSIL_CURL_CACHE_SIZE": str(128 * 2**20),
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
}

#: Resampling methods for reflectance bands (masks and classes always use ``nearest``).
RESAMPLINGS = ("bilinear", "cubic", "cubicspline", "lanczos", "average", "mode", "nearest")

#: Canonical band names that hold masks or classes (resampled with ``nearest``).
MASK_BANDS = frozenset({"scl", "qa_pixel", "qa_radsat", "qa_aerosol", "qa", "mask", "fmask", "cloud_mask",
                        "cloudmask", "classification", "cloud", "snow", "water_mask", "datamask"})

_S2_RE = re.compile(r"(?:^|_)(B8A|B1[0-2]|B0?[1-9]|SCL)(?:_(\d+)m)?\.(?:jp2|tiff?)$", re.I)
_LANDSAT_RE = re.compile(
    r"^(L[COTEM]0[4-9])_.*?_(?:(SR|ST)_)?(B\d{1,2}|QA_PIXEL|QA_RADSAT|QA_AEROSOL)\.tiff?$", re.I)
_LANDSAT_SENSOR = {"LC08": "landsat89", "LC09": "landsat89", "LO08": "landsat89", "LO09": "landsat89",
                   "LE07": "landsat7", "LT05": "landsat7", "LT04": "landsat7"}
_RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt", ".img", ".nc", ".hdf")
_RASTER_MEDIA = ("image/tiff", "image/jp2", "application/x-hdf", "application/netcdf")
_S2_ORDER = list(SENSOR_PRESETS["sentinel2_l1c"])


def _unfold(path: str | Path) -> str:
    """``https:/host/x`` (a URL that went through ``Path``, which folds ``//``) → ``https://host/x``."""
    s = str(path)
    return re.sub(r"^(https?|s3|gs):/(?!/)", r"\1://", s)


def is_remote(path: str | Path) -> bool:
    """True for URLs and GDAL virtual-file-system paths read over the network."""
    return _unfold(path).startswith(REMOTE_PREFIXES)


def gdal_path(path: str | Path) -> str:
    """The path GDAL opens: ``https://…`` → ``/vsicurl/https://…``, ``s3://b/k`` → ``/vsis3/b/k``,
    ``gs://b/k`` → ``/vsigs/b/k``; local paths and ``/vsi…/`` paths unchanged."""
    s = _unfold(path)
    if s.startswith(("http://", "https://")):
        return "/vsicurl/" + s
    if s.startswith("s3://"):
        return "/vsis3/" + s[5:]
    if s.startswith("gs://"):
        return "/vsigs/" + s[5:]
    return s


def configure_gdal(options: Mapping[str, str] | None = None) -> None:
    """Set GDAL configuration for remote reading: :data:`REMOTE_DEFAULTS` where the environment
    does not set them, then ``options`` (e.g. ``{"GDAL_HTTP_MAX_RETRY": "10",
    "AWS_NO_SIGN_REQUEST": "YES"}``), which win.

    They are set as environment variables, which GDAL consults on every call, so they hold in
    every thread (the prediction reader runs in its own) and in data-loading worker processes.

    Raises:
        ConfigError: a key that is not a GDAL configuration option name.
    """
    for key, value in REMOTE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    for key, value in (options or {}).items():
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", str(key)):
            raise ConfigError(f"GDAL option {key!r}: not a GDAL configuration option name "
                              "(upper case, e.g. GDAL_HTTP_MAX_RETRY=5).")
        os.environ[str(key)] = str(value)


def parse_gdal_options(items: Sequence[str] | None) -> dict[str, str]:
    """``["KEY=VALUE", …]`` (the ``--gdal-config`` option) → a dict.

    Raises:
        ConfigError: an item without ``=``.
    """
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--gdal-config {item!r}: give KEY=VALUE, e.g. GDAL_HTTP_MAX_RETRY=5.")
        out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class BandSource:
    """One band of a scene: a band of a raster file, with its canonical name."""

    path: str  # GDAL path (local absolute path or /vsi… path)
    band: int  # 1-based band index in that file
    name: str | None  # canonical name (None: left to the file's description)
    mask: bool = False  # a mask or class band: resampled with nearest


@dataclass
class ResolvedScene:
    """What :func:`resolve_scene` made of a scene: the raster to open and how it was built.

    Attributes:
        path: a local raster path (the input itself, or the VRT stacking the bands).
        name: a short name for messages and output names (``<name>_mask.tif``).
        kind: ``raster`` (a local raster used as it is), ``remote`` (a remote raster),
            ``bands`` (a folder or list of per-band files), ``safe`` or ``stac``.
        band_names: the stacked band names (None for a multi-band raster, local or remote:
            its own band descriptions name it, or ``--bands``/``--sensor``).
        resolution: the pixel size of the grid (x, y) in CRS units.
    """

    path: Path
    name: str
    kind: str
    band_names: list[str] | None = None
    resolution: tuple[float, float] | None = None


def scene_name(scene: str | Path | Sequence[str | Path]) -> str:
    """A short name for a scene as the user gave it (file or folder stem, URL file stem)."""
    if isinstance(scene, (list, tuple)):
        stems = [_strip_band(Path(str(s)).stem) for s in scene]
        common = os.path.commonprefix(stems).rstrip("_-.")
        return common or "stack"
    s = _unfold(scene).rstrip("/")
    if is_remote(s) and "://" in s:
        s = urllib.parse.urlsplit(s.removeprefix("/vsicurl/")).path
    return Path(s).stem or "scene"


def _strip_band(stem: str) -> str:
    """A band file's stem without its band part: ``LC09_…_T1_SR_B4`` → ``LC09_…_T1``."""
    m = _LANDSAT_RE.search(stem + ".tif")
    if m:
        return stem[: (m.start(2) if m.group(2) else m.start(3)) - 1]
    m = _S2_RE.search(stem + ".tif")
    return stem[: m.start()] if m and m.start() > 0 else stem


def needs_resolving(scene: Any) -> bool:
    """True when a scene is not a plain local raster file (a folder, list, STAC item or URL)."""
    if isinstance(scene, (list, tuple)):
        return True
    s = str(scene)
    if is_remote(s):
        return True
    p = Path(s)
    return p.is_dir() or (p.suffix.lower() == ".json" and p.is_file())


# ---------------------------------------------------------------------------------------------
# Naming bands from file names


def band_from_filename(filename: str, pattern: str | re.Pattern[str] | None = None,
                       sensor: str | None = None) -> tuple[str, bool, int] | None:
    """The canonical band name a file holds, judged by its name: ``(name, is_mask, rank)``.

    ``rank`` orders files of the same band (Sentinel-2 L2A ships B02 at 10, 20 and 60 m: the
    finest wins) and bands in their sensor's order. Returns None for files that name no band.

    Args:
        filename: the file's name (not its folder).
        pattern: a regular expression with a ``band`` group (or one group) matched against the
            name, for files named otherwise; the group's text is the band (a sensor id such as
            ``B04`` is mapped with ``sensor``, other text is taken as the name).
        sensor: a preset of :data:`rs_vit.io.bands.SENSOR_PRESETS` naming band ids.
    """
    if pattern is not None:
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        m = rx.search(filename)
        if not m:
            return None
        raw = m.group("band") if "band" in rx.groupindex else m.group(1 if rx.groups else 0)
        name = _id_to_name(raw, sensor)
        return name, name in MASK_BANDS, 0
    m = _LANDSAT_RE.search(filename)
    if m:
        mission, product, ident = m.group(1).upper(), (m.group(2) or "").upper(), m.group(3).upper()
        if ident.startswith("QA_"):
            return ident.lower(), True, 100
        preset = sensor or _LANDSAT_SENSOR.get(mission, "landsat89")
        if preset == "landsat89" and not product:
            preset = "landsat89_l1"
        name = _id_to_name(ident, preset)
        return name, False, int(re.sub(r"\D", "", ident) or 0)
    m = _S2_RE.search(filename)
    if m:
        ident = m.group(1).upper()
        if ident == "SCL":
            return "scl", True, 100
        ident = "B" + ident[1:].lstrip("0") if ident != "B8A" else ident
        return _id_to_name(ident, sensor or "sentinel2_l1c"), False, _S2_ORDER.index(ident)
    return None


def _id_to_name(ident: str, sensor: str | None) -> str:
    m = re.fullmatch(r"(?:b|band)[\s_]*0*(\d+)(a?)", ident.strip().lower())
    native = f"B{m.group(1)}{m.group(2).upper()}" if m else ident
    if sensor and sensor in SENSOR_PRESETS and native in SENSOR_PRESETS[sensor]:
        return SENSOR_PRESETS[sensor][native]
    return normalize_name(ident)


# ---------------------------------------------------------------------------------------------
# Headers


@dataclass(frozen=True)
class _Header:
    width: int
    height: int
    count: int
    dtype: str
    crs: Any
    transform: Any
    nodata: float | None
    block: tuple[int, int]
    descriptions: tuple[str | None, ...]

    @property
    def res(self) -> tuple[float, float]:
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        return t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f


def _gdal_message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _header(path: str, label: str) -> _Header:
    """Read a raster's header, turning GDAL's errors into one line naming the input."""
    if not is_remote(path) and not path.startswith("/vsi"):
        p = Path(path)
        if not p.exists():
            raise InputError(f"{label}: {path}: no such file; check the path.")
    try:
        with rasterio.open(path) as src:
            return _Header(src.width, src.height, src.count, src.dtypes[0], src.crs, src.transform,
                           src.nodata, tuple(src.block_shapes[0]) if src.block_shapes else (1, src.width),
                           tuple(src.descriptions))
    except (RasterioError, CPLE_BaseError) as exc:
        if is_remote(path):
            raise InputError(
                f"{label}: cannot open {path} ({_gdal_message(exc)}); check the URL and your network "
                "(retries and timeouts: --gdal-config GDAL_HTTP_MAX_RETRY=5 GDAL_HTTP_TIMEOUT=120; "
                "S3: AWS_NO_SIGN_REQUEST=YES or credentials)."
            ) from None
        raise InputError(f"{label}: {path} cannot be read as a raster ({_gdal_message(exc)}); "
                         "re-export or re-download it.") from None


# ---------------------------------------------------------------------------------------------
# Collecting the bands of a scene


def _is_safe(p: Path) -> bool:
    return p.is_dir() and (p.suffix.upper() == ".SAFE" or (p / "GRANULE").is_dir())


def _safe_files(p: Path) -> list[Path]:
    granules = sorted((p / "GRANULE").glob("*/IMG_DATA"))
    if not granules:
        raise InputError(f"{p}: SAFE folder without GRANULE/*/IMG_DATA; give the unzipped product "
                         "folder as downloaded (….SAFE).")
    if len(granules) > 1:
        raise InputError(f"{p}: SAFE folder holds {len(granules)} granules; give one granule's "
                         "IMG_DATA folder as the scene.")
    return sorted(f for f in granules[0].rglob("*") if f.is_file())


def _collect_files(files: Sequence[str], label: str, pattern: str | None,
                   sensor: str | None) -> list[tuple[str, str, bool, int]]:
    """``(gdal path, name, mask, rank)`` of the files that name a band (others are skipped)."""
    found = []
    for f in files:
        fname = urllib.parse.urlsplit(f).path.rsplit("/", 1)[-1] if "://" in f else Path(f).name
        got = band_from_filename(fname, pattern, sensor)
        if got is not None:
            path = f if is_remote(f) else str(Path(f).resolve())
            found.append((gdal_path(path), *got))
    if not found:
        how = f"matching --band-pattern {pattern!r}" if pattern else (
            "named like a Sentinel-2 (…_B02.jp2, …_B8A_20m.tif) or Landsat Collection 2 "
            "(LC09_…_SR_B4.TIF) band")
        shown = ", ".join(Path(f).name for f in files[:5]) + (" …" if len(files) > 5 else "")
        raise InputError(f"{label}: no single-band file {how} among [{shown}]; name the bands with "
                         "--band-pattern (a regular expression with a 'band' group), or give a "
                         "multi-band raster.")
    return found


def _stac_item(scene: str, label: str) -> tuple[dict[str, Any], str]:
    """Load a STAC item (file or URL); returns it and the base for relative hrefs."""
    try:
        if scene.startswith(("http://", "https://", "/vsicurl/")):
            url = scene.removeprefix("/vsicurl/")
            with urllib.request.urlopen(url, timeout=float(os.environ.get("GDAL_HTTP_TIMEOUT", 60))) as r:
                text = r.read().decode("utf-8")
            base = url
        elif is_remote(scene):
            raise InputError(f"{label}: STAC items are read from local files or http(s) URLs; "
                             f"download {scene} first or give its https:// URL.")
        else:
            text = Path(scene).read_text(encoding="utf-8")
            base = str(Path(scene).resolve())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise InputError(f"{label}: cannot read the STAC item ({exc}); check the path or URL.") from None
    try:
        item = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{label}: is not valid JSON ({exc}); give a STAC item.") from None
    if not isinstance(item, dict) or item.get("type") != "Feature" or not isinstance(item.get("assets"), dict):
        raise InputError(f"{label}: is not a STAC item (a GeoJSON Feature with 'assets'); give an item, "
                         "not a collection or search result.")
    return item, base


def _stac_bands(item: dict[str, Any], base: str, label: str,
                sensor: str | None) -> list[tuple[str, str, bool, int]]:
    """Single-band raster assets of a STAC item as ``(gdal path, name, mask, rank)``."""
    props = item.get("properties", {}) or {}
    platform = str(props.get("platform", props.get("constellation", ""))).lower()
    if sensor is None and "sentinel-2" in platform:
        sensor = "sentinel2_l1c"
    elif sensor is None and "landsat" in platform:
        sensor = "landsat7" if re.search(r"landsat[-_ ]?0?[457]\b", platform) else "landsat89"
    found: list[tuple[str, str, bool, int]] = []
    for i, (key, asset) in enumerate(item["assets"].items()):
        href = asset.get("href")
        if not isinstance(href, str):
            continue
        media = str(asset.get("type", "")).lower()
        suffix = Path(urllib.parse.urlsplit(href).path).suffix.lower()
        if not (any(m in media for m in _RASTER_MEDIA) or (not media and suffix in _RASTER_SUFFIXES)):
            continue
        roles = asset.get("roles") or ["data"]
        if "thumbnail" in roles or "overview" in roles or "visual" in roles:
            continue
        eo = asset.get("eo:bands") or asset.get("bands") or []
        if len(eo) > 1:
            continue  # a multi-band asset (e.g. the true-colour image) is not a band
        band_id = str(eo[0].get("name", "")) if eo else ""
        common = (eo[0].get("common_name") or eo[0].get("eo:common_name")) if eo else None
        if band_id and _id_to_name(band_id, sensor) != normalize_name(band_id):
            # a sensor band id (B5): named as rs-vit names that sensor's files, so items and files
            # agree (Landsat's B5 is "nir" for rs-vit, "nir08" in STAC's common names)
            name = _id_to_name(band_id, sensor)
        elif common:
            name = normalize_name(common)
        else:
            if not eo and "data" not in roles:
                continue
            name = _id_to_name(band_id or key, sensor)
        if any(f[1] == name for f in found):
            continue  # the same band in another format (e.g. a JPEG 2000 twin of a COG asset)
        known = list(SENSOR_PRESETS[sensor].values()) if sensor in SENSOR_PRESETS else []
        rank = known.index(name) if name in known else len(known) + i  # the sensor's order first
        found.append((gdal_path(_join_href(base, href)), name, name in MASK_BANDS, rank))
    if not found:
        raise InputError(f"{label}: STAC item has no single-band raster assets (assets: "
                         f"{', '.join(item['assets'])}); give an item whose assets are one band each "
                         "(eo:bands), or a multi-band raster.")
    return found


def _join_href(base: str, href: str) -> str:
    if "://" in href or href.startswith("/"):
        return href
    if "://" in base:
        return urllib.parse.urljoin(base, href)
    return str((Path(base).parent / href).resolve())


# ---------------------------------------------------------------------------------------------
# The VRT


_VRT_DIR: Path | None = None
_VRT_LOCK = threading.Lock()
_GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
               "int32": "Int32", "uint64": "UInt64", "int64": "Int64", "float32": "Float32",
               "float64": "Float64"}


def _vrt_dir() -> Path:
    global _VRT_DIR
    with _VRT_LOCK:
        if _VRT_DIR is None or not _VRT_DIR.is_dir():
            _VRT_DIR = Path(tempfile.mkdtemp(prefix="rs-vit-sources-"))
            atexit.register(shutil.rmtree, _VRT_DIR, True)
        return _VRT_DIR


def _grid(bands: list[tuple[BandSource, _Header]], resolution: float | str | None,
          label: str) -> tuple[Any, Any, int, int]:
    """``(crs, transform, width, height)`` of the target grid."""
    crs = bands[0][1].crs
    for b, h in bands[1:]:
        if h.crs != crs:
            raise InputError(f"{label}: band {b.name} is in {h.crs} but band {bands[0][0].name} in {crs}; "
                             "bands stacked into one scene must share a CRS (reproject them first).")
    ref_bounds = None
    ref = min(range(len(bands)), key=lambda i: bands[i][1].res[0] * bands[i][1].res[1])  # the finest
    if resolution is None or resolution == "finest":
        res = bands[ref][1].res
    elif isinstance(resolution, str) and not _is_number(resolution):
        want = normalize_name(resolution)
        named = [(b, h) for b, h in bands if b.name == want or b.name == _id_to_name(resolution, "sentinel2_l1c")]
        if not named:
            have = [b.name for b, _ in bands]
            raise InputError(f"{label}: --resolution {resolution!r} names no band of the scene "
                             f"[{', '.join(str(n) for n in have)}];{suggest(want, [str(n) for n in have])} "
                             "give a band name, a pixel size in CRS units (e.g. 10) or 'finest'.")
        ref = next(i for i, (b, _) in enumerate(bands) if b is named[0][0])
        res, ref_bounds = named[0][1].res, named[0][1].bounds
    else:
        r = float(resolution)
        if not (r > 0 and math.isfinite(r)):
            raise ConfigError(f"--resolution {resolution!r}: give a positive pixel size in CRS units.")
        res = (r, r)
    boxes = [h.bounds for _, h in bands]
    if ref_bounds is None:
        ref_bounds = (min(b[0] for b in boxes), min(b[1] for b in boxes),
                      max(b[2] for b in boxes), max(b[3] for b in boxes))
    rb = boxes[ref]
    for (b, _), box in zip(bands, boxes):
        if box[0] >= rb[2] or box[2] <= rb[0] or box[1] >= rb[3] or box[3] <= rb[1]:
            raise InputError(f"{label}: band {b.name} ({_fmt(box)}) does not overlap band "
                             f"{bands[ref][0].name} ({_fmt(rb)}); the files do not belong to one scene.")
    left, bottom, right, top = ref_bounds
    width = max(1, int(math.ceil((right - left) / res[0] - 1e-6)))
    height = max(1, int(math.ceil((top - bottom) / res[1] - 1e-6)))
    return crs, rasterio.Affine(res[0], 0.0, left, 0.0, -res[1], top), width, height


def _fmt(box: tuple[float, float, float, float]) -> str:
    return "bounds " + ", ".join(f"{v:.1f}" for v in box)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def write_vrt(bands: Sequence[tuple[BandSource, _Header]], crs: Any, transform: Any, width: int, height: int,
              path: Path, *, resampling: str = "bilinear") -> Path:
    """Write a VRT stacking ``bands`` onto the grid, each resampled on the fly (masks: nearest).

    Every band becomes one ``VRTRasterBand`` with a ``SimpleSource`` mapping the whole source
    raster onto its footprint in the grid (``DstRect``); GDAL resamples at read time.
    """
    dtype = np.result_type(*[np.dtype(h.dtype) for _, h in bands]).name
    root = ET.Element("VRTDataset", rasterXSize=str(width), rasterYSize=str(height))
    if crs is not None:
        ET.SubElement(root, "SRS", dataAxisToSRSAxisMapping="1,2").text = crs.to_wkt()
    t = transform
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(float(v)) for v in (t.c, t.a, t.b, t.f, t.d, t.e))
    # blocks like the finest source's (tiles of a COG): the reader then decodes each tile once
    by, bx = min((h for _, h in bands), key=lambda h: h.res[0] * h.res[1]).block
    block = {"blockXSize": str(bx), "blockYSize": str(by)} if 16 <= bx <= 1024 and 16 <= by <= 1024 else {}
    for i, (b, h) in enumerate(bands, start=1):
        vb = ET.SubElement(root, "VRTRasterBand", dataType=_GDAL_TYPES[dtype], band=str(i), **block)
        if b.name:
            ET.SubElement(vb, "Description").text = b.name
        if h.nodata is not None:
            ET.SubElement(vb, "NoDataValue").text = repr(float(h.nodata))
        src = ET.SubElement(vb, "SimpleSource", resampling="nearest" if b.mask else resampling)
        ET.SubElement(src, "SourceFilename", relativeToVRT="0").text = b.path
        ET.SubElement(src, "SourceBand").text = str(b.band)
        ET.SubElement(src, "SourceProperties", RasterXSize=str(h.width), RasterYSize=str(h.height),
                      DataType=_GDAL_TYPES.get(h.dtype, "Float64"), BlockXSize=str(h.block[1]),
                      BlockYSize=str(h.block[0]))
        ET.SubElement(src, "SrcRect", xOff="0", yOff="0", xSize=str(h.width), ySize=str(h.height))
        left, bottom, right, top = h.bounds
        ET.SubElement(src, "DstRect", xOff=repr((left - t.c) / t.a), yOff=repr((top - t.f) / t.e),
                      xSize=repr((right - left) / t.a), ySize=repr((bottom - top) / t.e))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.part")
    ET.ElementTree(root).write(tmp, encoding="utf-8")
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------------------------
# The seam


def resolve_scene(
    scene: str | Path | Sequence[str | Path],
    *,
    resolution: float | str | None = None,
    resampling: str = "bilinear",
    band_pattern: str | None = None,
    sensor: str | None = None,
    select: Sequence[str] | None = None,
    gdal_config: Mapping[str, str] | None = None,
    vrt_dir: str | Path | None = None,
) -> ResolvedScene:
    """Turn a scene as the user gives it into a raster rasterio opens, with named bands.

    Args:
        scene: a raster file, a folder or list of per-band files, a SAFE folder, a STAC item
            (``.json`` file or URL), or a remote raster (``https://``, ``/vsicurl/``, ``s3://``…).
        resolution: the grid of stacked bands: None or ``"finest"`` (the finest band's), a band
            name (that band's grid, e.g. ``"B11"`` or ``"swir16"``), or a pixel size in CRS units
            (e.g. ``10``). A multi-band raster given with a pixel size is resampled too.
        resampling: method for reflectance bands (:data:`RESAMPLINGS`); masks and classes
            (``scl``, ``qa_pixel``…) always use ``nearest``.
        band_pattern: a regular expression with a ``band`` group naming the band of each file
            (for files not named like Sentinel-2 or Landsat bands).
        sensor: a sensor preset mapping band ids found in file names / asset keys to names.
        select: for per-band products, stack only these bands (canonical names or aliases, in
            this order), e.g. the bands a model needs, so the others are never opened; a band
            the product lacks is an error naming both lists. Multi-band rasters keep their bands
            (they are matched by name when read).
        gdal_config: GDAL options for remote reading (see :func:`configure_gdal`).
        vrt_dir: where the VRT is written (default: a per-process temporary folder removed at
            exit).

    Returns:
        A :class:`ResolvedScene`; its ``path`` opens with rasterio (and every rs-vit function).

    Raises:
        InputError: unreadable or unreachable inputs (with GDAL's message), a folder or STAC item
            without band files/assets, a band the scene lacks, bands that do not overlap.
        ConfigError: an unknown resampling method or an invalid resolution.
    """
    if resampling not in RESAMPLINGS:
        raise ConfigError(f"Unknown --resampling {resampling!r};{suggest(resampling, RESAMPLINGS)} "
                          f"choose one of {', '.join(RESAMPLINGS)}.")
    if band_pattern is not None:
        try:
            re.compile(band_pattern)
        except re.error as exc:
            raise ConfigError(f"--band-pattern {band_pattern!r}: not a regular expression ({exc}).") from None
    scene = [_unfold(s) for s in scene] if isinstance(scene, (list, tuple)) else _unfold(scene)
    name = scene_name(scene)
    label = name if isinstance(scene, (list, tuple)) else str(scene)
    remote = any(is_remote(s) for s in (scene if isinstance(scene, (list, tuple)) else [scene]))
    if remote or gdal_config:
        configure_gdal(gdal_config)
    kind: str
    if isinstance(scene, (list, tuple)):
        if not scene:
            raise InputError("An empty list of band files was given as a scene; list the files.")
        kind, found = "bands", _collect_files([str(s) for s in scene], label, band_pattern, sensor)
    else:
        s = str(scene)
        p = Path(s)
        url_path = urllib.parse.urlsplit(s).path if "://" in s else s
        if (url_path.lower().endswith(".json") and (is_remote(s) or p.is_file())) or (
                s.startswith(("http://", "https://")) and not Path(url_path).suffix):  # a STAC API item URL
            item, base = _stac_item(s, label)
            kind, found = "stac", _stac_bands(item, base, label, sensor)
        elif is_remote(s):
            kind, found = "remote", []
        elif _is_safe(p):
            kind, found = "safe", _collect_files([str(f) for f in _safe_files(p)], label, band_pattern, sensor)
        elif p.is_dir():
            files = sorted(str(f) for f in p.iterdir() if f.is_file())
            kind, found = "bands", _collect_files(files, label, band_pattern, sensor)
        else:
            kind, found = "raster", []
    if any(is_remote(f[0]) for f in found):  # a local STAC item with remote assets
        configure_gdal(gdal_config)
    if kind in ("raster", "remote"):
        path = gdal_path(str(scene)) if kind == "remote" else str(scene)
        if kind == "raster" and not _is_number(str(resolution)):  # used as it is
            return ResolvedScene(Path(path), name, kind)
        h = _header(path, label)
        pairs = [(BandSource(path if kind == "remote" else str(Path(path).resolve()), i + 1, h.descriptions[i]), h)
                 for i in range(h.count)]
    else:
        # one file per band: the finest file of each band name, in the sensor's order
        best: dict[str, tuple[BandSource, _Header, int]] = {}
        wanted = [normalize_name(b) for b in select] if select else None
        for path, bname, mask, rank in found:
            if wanted is not None and bname not in wanted:
                continue
            h = _header(path, label)
            if h.count != 1:
                continue  # a multi-band file in a band folder (e.g. TCI) is not one band
            cur = best.get(bname)
            if cur is None or h.res[0] * h.res[1] < cur[1].res[0] * cur[1].res[1]:
                best[bname] = (BandSource(path, 1, bname, mask), h, rank)
        if wanted is not None:
            missing = [b for b in wanted if b not in best]
            if missing:
                have = sorted({f[1] for f in found})
                raise InputError(f"{label}: band(s) {', '.join(missing)} missing from the product "
                                 f"(it has [{', '.join(have)}]); give a product with these bands, or a "
                                 "checkpoint trained on the bands it has.")
            order = wanted
        else:
            order = sorted(best, key=lambda n: (best[n][0].mask, best[n][2], n))
        if not best:
            raise InputError(f"{label}: no single-band raster among its band files; give per-band "
                             "files (one band each) or a multi-band raster.")
        pairs = [(best[n][0], best[n][1]) for n in order]
    crs, transform, width, height = _grid(pairs, resolution, label)
    key = json.dumps([str(scene) if not isinstance(scene, (list, tuple)) else [str(x) for x in scene],
                      str(resolution), resampling, band_pattern, sensor, list(select or [])])
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    folder = Path(vrt_dir) if vrt_dir is not None else _vrt_dir() / digest
    out = write_vrt(pairs, crs, transform, width, height, folder / f"{name}.vrt", resampling=resampling)
    # a multi-band raster keeps its descriptions, named by rs-vit as any raster (--sensor applies)
    names = None if kind in ("raster", "remote") else [str(b.name) for b, _ in pairs]
    return ResolvedScene(out, name, kind, names, (abs(transform.a), abs(transform.e)))


def local_raster(scene: str | Path | Sequence[str | Path], **options: Any) -> Path:
    """The local raster path of a scene: the scene itself when it is a local raster file, else
    the VRT :func:`resolve_scene` builds (with ``options``)."""
    if not options and not needs_resolving(scene):
        return Path(str(scene))
    return resolve_scene(scene, **options).path
