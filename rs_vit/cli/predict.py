"""``rs-vit predict``: sliding-window prediction of one or many scenes."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Annotated

import typer

from rs_vit.cli.app import app, echo, handle_errors

ENGINE = "Sliding windows"
INPUT = "Input bands"


@app.command("predict")
@handle_errors
def predict_cmd(
    scenes: Annotated[list[str], typer.Argument(help="Scene GeoTIFF(s) or glob patterns.")],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-k", help="Checkpoint folder (e.g. runs/x/best).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output mask GeoTIFF (one scene).")] = None,
    out_dir: Annotated[Path | None, typer.Option(help="Output folder (several scenes): <name>_mask.tif each.")] = None,
    tile_size: Annotated[int | None, typer.Option(help="Window size (default: the checkpoint's).", rich_help_panel=ENGINE)] = None,
    overlap: Annotated[float, typer.Option(help="Window overlap: fraction (<1) or pixels (>=1).", rich_help_panel=ENGINE)] = 0.5,
    blend: Annotated[str, typer.Option(help="hann, gaussian, triangular, spline, uniform or crop.", rich_help_panel=ENGINE)] = "hann",
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.", rich_help_panel=ENGINE)] = 4,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.", rich_help_panel=ENGINE)] = "auto",
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16.", rich_help_panel=ENGINE)] = "auto",
    bands: Annotated[str | None, typer.Option(help="Comma-separated names of the scene's bands.", rich_help_panel=INPUT)] = None,
    sensor: Annotated[str | None, typer.Option(help="Sensor preset naming the scene's bands.", rich_help_panel=INPUT)] = None,
    nodata: Annotated[float | None, typer.Option(help="Input nodata value (default: the scene's).", rich_help_panel=INPUT)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar per scene.")] = True,
) -> None:
    """Predict class masks with overlapping, blended windows; outputs keep the scene's georeferencing."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from rs_vit.errors import ConfigError, InputError
    from rs_vit.infer.engine import SlidingWindowPredictor, predict_scene
    from rs_vit.io.atomic import check_output
    from rs_vit.models.checkpoint import load_model

    paths: list[Path] = []
    for s in scenes:
        hits = sorted(glob.glob(s)) if any(ch in s for ch in "*?[") else [s]
        if not hits:
            raise InputError(f"No file matches {s!r}; check the pattern.")
        paths.extend(Path(h) for h in hits)
    if len(paths) > 1 and out is not None:
        raise ConfigError(f"{len(paths)} scenes given: use --out-dir instead of --out.")
    if out is None and out_dir is None:
        raise ConfigError("Give --out mask.tif (one scene) or --out-dir folder/ (several scenes).")
    targets = [out] if out is not None else [Path(out_dir) / f"{p.stem}_mask.tif" for p in paths]  # type: ignore[arg-type]
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    for t in targets:  # fail before loading the model or reading anything
        check_output(t, overwrite=overwrite, label="output mask")
    band_list = [b.strip() for b in bands.split(",")] if bands else None
    model, spec = load_model(checkpoint)
    predictor = SlidingWindowPredictor(model, spec, tile_size=tile_size, overlap=overlap, blend=blend,
                                       batch_size=batch_size, device=device, precision=precision)

    def make_bar(total: int, name: str):
        bar = Progress(TextColumn(name), BarColumn(), TextColumn("{task.completed}/{task.total} windows"),
                       TextColumn("{task.speed} win/s" if False else ""), TimeRemainingColumn(),
                       disable=not progress, transient=True)
        bar.start()
        task = bar.add_task(name, total=total)

        def tick(n: int) -> None:
            bar.update(task, advance=n)
            if bar.tasks[task].finished:
                bar.stop()

        return tick

    results = []
    for path, target in zip(paths, targets):
        r = predict_scene(path, target, predictor=predictor, bands=band_list, sensor=sensor,
                          nodata=nodata, overwrite=overwrite, progress=make_bar)
        results.append(r)
        echo(f"{r.scene.name}: {r.windows} windows ({r.windows_skipped} all-nodata skipped) in "
             f"{r.seconds:.1f}s, {r.windows_per_second:.1f} windows/s -> {r.out}")
    if len(results) > 1:
        total = sum(r.seconds for r in results)
        echo(f"{len(results)} scenes in {total:.1f}s")
