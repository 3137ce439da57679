"""Helpers for the reliability and fuzz tests: tiny scenes, a tiny real checkpoint, a CLI runner
that separates stdout from stderr, and checks that a failure left nothing behind."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.transform import Affine, from_origin

ROOT = Path(__file__).resolve().parent.parent
BANDS6 = ["blue", "green", "red", "nir", "swir16", "swir22"]
CRS = "EPSG:32633"
TRANSFORM = from_origin(500000.0, 4000000.0, 10.0, 10.0)
MODEL = "unet_resnet18"
TILE = 32


def make_scene(
    path: Path,
    height: int = 48,
    width: int = 64,
    *,
    bands: Sequence[str] | None = BANDS6,
    count: int | None = None,
    dtype: str = "uint16",
    nodata: float | None = 0,
    crs: str | None = CRS,
    transform: Affine = TRANSFORM,
    data: np.ndarray | None = None,
    seed: int = 0,
    **creation: Any,
) -> Path:
    """Write a small GeoTIFF with named bands (``bands=None``: no descriptions); ``creation``:
    extra GDAL creation options (e.g. ``compress="deflate"``)."""
    n = count if count is not None else len(bands or BANDS6)
    if data is None:
        rng = np.random.default_rng(seed)
        data = rng.integers(100, 3000, size=(n, height, width)).astype(dtype)
    profile: dict[str, Any] = {"driver": "GTiff", "width": width, "height": height, "count": n,
                               "dtype": dtype, "transform": transform, "nodata": nodata, **creation}
    if crs is not None:
        profile["crs"] = crs
    with rasterio.Env(GTIFF_SRS_SOURCE="EPSG"):
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data.astype(dtype))
            if bands:
                for i, b in enumerate(bands, start=1):
                    dst.set_band_description(i, b)
    return path


def make_checkpoint(folder: Path, *, bands: Sequence[str] = BANDS6, num_classes: int = 3,
                    name: str = MODEL, tile: int = TILE) -> Path:
    """A real (randomly initialised) rs-vit checkpoint folder of a registered model."""
    from rs_vit.models.checkpoint import ModelSpec, save_checkpoint
    from rs_vit.models.registry import create_model, get_entry

    model = create_model(name, in_channels=len(bands), num_classes=num_classes, band_names=list(bands))
    entry = get_entry(name)
    spec = ModelSpec(
        name=name, in_channels=len(bands), num_classes=num_classes, bands=list(bands),
        mean=[1000.0] * len(bands), std=[500.0] * len(bands),
        classes=[{"name": f"c{i}", "color": [40 * i, 100, 200]} for i in range(num_classes)],
        tile_size=tile, nodata=0,
        extra={"tile_multiple": entry.tile_multiple, "fixed_tile": entry.fixed_tile},
    )
    return save_checkpoint(folder, model, spec)


@dataclass
class CliResult:
    """Exit code and the two output streams of one CLI run."""

    code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None

    @property
    def error_lines(self) -> list[str]:
        """Non-empty stderr lines."""
        return [line for line in self.stderr.splitlines() if line.strip()]


def cli(*args: str | Path) -> CliResult:
    """Run ``rs-vit ARGS`` in this process (Typer's CliRunner) with stdout and stderr apart."""
    from typer.testing import CliRunner

    from rs_vit.cli.app import STATE, app

    STATE["debug"] = False
    runner = CliRunner()
    res = runner.invoke(app, [str(a) for a in args], catch_exceptions=True)
    STATE["debug"] = False
    exc = res.exception if not isinstance(res.exception, SystemExit) else None
    return CliResult(res.exit_code, res.stdout, res.stderr, exc)


def cli_subprocess(*args: str | Path, timeout: float = 120, env: dict[str, str] | None = None) -> CliResult:
    """Run ``python -m rs_vit ARGS`` in a fresh process (the real entry point)."""
    full_env = {**os.environ, **(env or {})}
    p = subprocess.run([sys.executable, "-m", "rs_vit", *map(str, args)], capture_output=True,
                       text=True, timeout=timeout, cwd=ROOT, env=full_env)
    return CliResult(p.returncode, p.stdout, p.stderr)


def assert_clean_error(res: CliResult, *must_contain: str, code: int = 2) -> str:
    """The run failed with ``code``, one ``Error:`` line on stderr, no traceback; returns it."""
    assert res.exception is None, f"uncaught {type(res.exception).__name__}: {res.exception}"
    assert res.code == code, f"exit code {res.code}, stderr: {res.stderr!r}"
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    lines = res.error_lines
    assert len(lines) == 1, f"expected one error line, got {lines}"
    line = lines[0]
    prefix = "Error: " if code == 2 else ""
    assert line.startswith(prefix), line
    for s in must_contain:
        assert s.lower() in line.lower(), f"{s!r} not in {line!r}"
    return line


def leftovers(folder: Path, before: set[str] | None = None) -> list[str]:
    """Files in ``folder`` (recursively) that were not in ``before``."""
    now = {str(p.relative_to(folder)) for p in folder.rglob("*")}
    return sorted(now - (before or set()))


def snapshot(folder: Path) -> set[str]:
    """Names of everything under ``folder``."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@contextlib.contextmanager
def load_each_checkpoint_once() -> Iterator[None]:
    """Patch :func:`rs_vit.models.checkpoint.load_model` to build each checkpoint (by path) once:
    tests of *scene* handling through the CLI then cost only the scene's checks and windows.
    Different checkpoint folders are still loaded for real."""
    import pytest

    from rs_vit.models import checkpoint

    real = checkpoint.load_model
    cache: dict[str, Any] = {}

    def load_once(path: str | Path, **kw: Any) -> Any:
        key = str(Path(path).resolve())
        if key not in cache:
            cache[key] = real(path, **kw)
        return cache[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checkpoint, "load_model", load_once)
        yield
