"""``rs-vit stats``: per-band statistics of scenes (nodata-aware, sampled for large scenes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rs_vit.cli.app import app, echo, handle_errors


@app.command("stats")
@handle_errors
def stats_cmd(
    scenes: Annotated[list[Path], typer.Argument(help="Scene GeoTIFF(s).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also save the statistics as JSON.")] = None,
    samples: Annotated[int, typer.Option(help="About this many pixels are read per scene (decimated).")] = 2_000_000,
    bands: Annotated[str | None, typer.Option(help="Comma-separated band names overriding the descriptions.")] = None,
    sensor: Annotated[str | None, typer.Option(help="Sensor preset naming the bands.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Print per-band mean, std, min and max of each scene's valid pixels (not nodata, not masked by
    an alpha band or GDAL mask; an alpha band is not a data band)."""
    from rich.console import Console
    from rich.table import Table

    from rs_vit.data.stats import file_stats
    from rs_vit.errors import ConfigError
    from rs_vit.io.atomic import atomic_write_text, check_output

    if samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {samples}.")
    if out is not None:
        check_output(out, overwrite=overwrite, label="--out")
    names = [b.strip() for b in bands.split(",")] if bands else None
    results = []
    console = Console()
    for p in scenes:
        r = file_stats(p, samples=samples, bands=names, sensor=sensor)
        results.append(r)
        t = Table(title=f"{p.name}  ({r['valid_pixels']} valid of {r['sampled_pixels']} sampled pixels, "
                        f"nodata {r['nodata']}" + (f", GDAL mask: {r['mask']}" if r["mask"] else "") + ")")
        for col in ("band", "mean", "std", "min", "max"):
            t.add_column(col, justify="left" if col == "band" else "right")
        for b in r["bands"]:
            t.add_row(b["name"], f"{b['mean']:.4g}", f"{b['std']:.4g}", f"{b['min']:.4g}", f"{b['max']:.4g}")
        console.print(t)
    if out is not None:
        atomic_write_text(out, json.dumps(results if len(results) > 1 else results[0], indent=2))
        echo(f"Saved {out}")
