"""Fixtures for the imagery-source tests: per-band files named like a Sentinel-2 product, a
SAFE-like folder, STAC items, COGs, and a loopback HTTP server that honours ``Range:``.

Everything is written by seeded code into the test's temporary folder; the server serves one
folder on 127.0.0.1 from its own process, logs the requests and bytes it sends, and stops
when the test ends.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

CRS = "EPSG:32631"
ORIGIN = (600000.0, 5000000.0)
#: Sentinel-2 bands by native resolution (a subset of each group keeps the fixture small).
S2_BANDS = {10: ["B02", "B03", "B04", "B08"], 20: ["B05", "B8A", "B11", "B12", "SCL"], 60: ["B01", "B09"]}
S2_NAMES = {"B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B08": "nir",
            "B8A": "nir08", "B09": "nir09", "B11": "swir16", "B12": "swir22", "SCL": "scl"}


def smooth(h: int, w: int, seed: int, *, dtype: str = "uint16") -> np.ndarray:
    """A smooth seeded field with texture (so resampling methods differ) as ``dtype``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a = 1500 + 600 * np.sin(xx / (3 + seed % 5)) + 500 * np.cos(yy / (4 + seed % 3)) + rng.normal(0, 80, (h, w))
    return a.clip(1, 60000).astype(dtype)


def write_band(path: Path, data: np.ndarray, res: float, *, crs: str = CRS, origin: tuple[float, float] = ORIGIN,
               nodata: float | None = 0, driver: str = "GTiff", **extra) -> Path:
    """One single-band raster at ``res`` metres."""
    path.parent.mkdir(parents=True, exist_ok=True)
    prof = dict(driver=driver, width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype.name,
                crs=crs, transform=from_origin(origin[0], origin[1], res, res), nodata=nodata, **extra)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data, 1)
    return path


def s2_product(folder: Path, size10: int = 60, *, safe: bool = False, l2a: bool = False,
               suffix: str = ".tif", origin: tuple[float, float] = ORIGIN, crs: str = CRS) -> Path:
    """Per-band files of a small Sentinel-2 product (10, 20 and 60 m bands over one extent).

    ``safe`` lays them out as ``X.SAFE/GRANULE/<granule>/IMG_DATA[/R10m…]`` (L2A names carry the
    resolution: ``…_B02_10m.jp2``); otherwise all files sit in ``folder``. L2A products also
    hold coarser copies of the 10 m bands (``R20m/…_B02_20m``), which must not win.
    """
    stem = "T31UFQ_20230101T105441"
    root = folder
    if safe:
        root = folder / "S2B_MSIL2A_20230101T105441_N0509_R051_T31UFQ_20230101T120000.SAFE" if l2a else \
            folder / "S2B_MSIL1C_20230101T105441_N0509_R051_T31UFQ_20230101T120000.SAFE"
        (root / "manifest.safe").parent.mkdir(parents=True, exist_ok=True)
        (root / "manifest.safe").write_text("<xfdu/>")
    seed = 0
    for res, ids in S2_BANDS.items():
        n = size10 * 10 // res
        for ident in ids:
            seed += 1
            if ident == "SCL":
                data = (np.arange(n * n).reshape(n, n) % 11).astype("uint8")
            else:
                data = smooth(n, n, seed)
            name = f"{stem}_{ident}_{res}m{suffix}" if l2a else f"{stem}_{ident}{suffix}"
            sub = root / "GRANULE" / f"L2A_{stem}" / "IMG_DATA" if safe else root
            if safe and l2a:
                sub = sub / f"R{res}m"
            write_band(sub / name, data, res, origin=origin, crs=crs,
                       nodata=None if ident == "SCL" else 0)
            if l2a and res == 10:  # the 20 m copy of a 10 m band (coarser: must not be picked)
                write_band((sub.parent / "R20m" if safe else sub) / f"{stem}_{ident}_20m{suffix}",
                           data[::2, ::2].copy(), 20, origin=origin, crs=crs)
    (folder / "notes.txt").write_text("not a band")
    return root


def write_cog(path: Path, data: np.ndarray, bands: list[str], *, res: float = 10.0, block: int = 256,
              nodata: float | None = 0, crs: str = CRS, origin: tuple[float, float] = ORIGIN) -> Path:
    """A Cloud Optimised GeoTIFF (tiled, deflate, overviews) with named bands."""
    import rasterio.shutil

    tmp = path.with_suffix(".tmp.tif")
    prof = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                dtype=data.dtype.name, crs=crs, transform=from_origin(origin[0], origin[1], res, res),
                nodata=nodata, tiled=True, blockxsize=block, blockysize=block, compress="deflate")
    with rasterio.open(tmp, "w", **prof) as dst:
        dst.write(data)
        for i, b in enumerate(bands, 1):
            dst.set_band_description(i, b)
    rasterio.shutil.copy(tmp, path, driver="COG", blocksize=block, compress="deflate")
    tmp.unlink()
    return path


def stac_item(path: Path, assets: dict[str, str], *, platform: str = "sentinel-2b",
              common_names: bool = True) -> Path:
    """A STAC item whose assets (key → href) are single bands, plus assets that are not bands."""
    out = {"type": "Feature", "stac_version": "1.0.0", "id": path.stem,
           "properties": {"platform": platform, "datetime": "2023-01-01T10:54:41Z"},
           "geometry": None, "links": [], "assets": {}}
    for key, href in assets.items():
        a: dict = {"href": href, "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                   "roles": ["data"]}
        if common_names and key in S2_NAMES and key != "SCL":
            a["eo:bands"] = [{"name": key, "common_name": S2_NAMES[key]}]
        out["assets"][key] = a
    out["assets"]["thumbnail"] = {"href": "thumb.png", "type": "image/png", "roles": ["thumbnail"]}
    out["assets"]["metadata"] = {"href": "meta.xml", "type": "application/xml", "roles": ["metadata"]}
    path.write_text(json.dumps(out))
    return path


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves files of ``server.root`` with ``Range:`` support; logs requests and bytes sent."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _file(self) -> Path | None:
        rel = self.path.split("?", 1)[0].lstrip("/")
        p = (self.server.root / rel).resolve()  # type: ignore[attr-defined]
        return p if p.is_file() and self.server.root in p.parents else None  # type: ignore[attr-defined]

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _log(self, sent: int) -> None:
        with open(self.server.log, "a") as fh:  # type: ignore[attr-defined]
            fh.write(json.dumps([self.command, self.path, self.headers.get("Range"), sent]) + "\n")

    def _serve(self, body: bool) -> None:
        p = self._file()
        if p is None:
            self._log(0)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = p.stat().st_size
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        if m:
            start, end = int(m.group(1)), min(int(m.group(2) or size - 1), size - 1)
            if start >= size:
                self._log(0)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            start, end = 0, size - 1
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        data = b""
        if body:
            with open(p, "rb") as fh:
                fh.seek(start)
                data = fh.read(end - start + 1)
            self.wfile.write(data)
        self._log(len(data))


def _serve(root: str, log: str, port_file: str) -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.root = Path(root).resolve()  # type: ignore[attr-defined]
    srv.log = log  # type: ignore[attr-defined]
    Path(port_file + ".part").write_text(str(srv.server_address[1]))
    os.replace(port_file + ".part", port_file)
    srv.serve_forever(poll_interval=0.05)


class RangeServer:
    """What the test sees of the server: its URL, the requests and the bytes it sent."""

    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log = url, log

    @property
    def requests(self) -> list[tuple[str, str, str | None]]:
        """``(method, path, Range header)`` of every request so far."""
        return [tuple(r[:3]) for r in self._rows()]  # type: ignore[misc]

    @property
    def bytes_sent(self) -> int:
        return sum(r[3] for r in self._rows())

    def _rows(self) -> list[list]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@contextmanager
def range_server(root: Path, timeout: float = 120.0) -> Iterator[RangeServer]:
    """An HTTP server on 127.0.0.1 (a free port) serving ``root`` from its own process (GDAL holds
    the GIL while it reads, so a server thread in this process could deadlock). It is killed on
    exit, and after ``timeout`` seconds in any case."""
    import multiprocessing as mp
    import tempfile
    import time

    tmp = Path(tempfile.mkdtemp(prefix="range-server-"))
    log, port_file = tmp / "requests.jsonl", tmp / "port"
    proc = mp.get_context("spawn").Process(target=_serve, args=(str(root), str(log), str(port_file)), daemon=True)
    proc.start()
    killer = threading.Timer(timeout, proc.kill)
    killer.daemon = True
    killer.start()
    old = {k: os.environ.get(k) for k in ("NO_PROXY", "no_proxy")}
    os.environ.update(NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    try:
        t0 = time.monotonic()
        while not port_file.exists():
            if time.monotonic() - t0 > 30 or not proc.is_alive():
                raise RuntimeError("the test HTTP server did not start")
            time.sleep(0.02)
        yield RangeServer(f"http://127.0.0.1:{port_file.read_text()}", log)
    finally:
        killer.cancel()
        proc.kill()
        proc.join(5)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
