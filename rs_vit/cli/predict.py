"""``rs-vit predict``: sliding-window prediction of one or many scenes."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Annotated

import typer

from rs_vit.cli.app import app, echo, handle_errors

ENGINE = "Sliding windows"
INPUT = "Input bands"
OUTPUTS = "Outputs"


@app.command("predict")
@handle_errors
def predict_cmd(
    scenes: Annotated[list[str], typer.Argument(help="Scenes: GeoTIFFs or glob patterns, folders of per-band files, SAFE folders, STAC items, URLs (https://, s3://); see docs/sources.md.")],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-k", help="Checkpoint folder (e.g. runs/x/best).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output mask GeoTIFF (one scene).", rich_help_panel=OUTPUTS)] = None,
    out_dir: Annotated[Path | None, typer.Option(help="Output folder (several scenes): <name>_mask.tif each.", rich_help_panel=OUTPUTS)] = None,
    probabilities: Annotated[bool, typer.Option("--probabilities", help="Also write per-class probabilities (<mask>_probs.tif).", rich_help_panel=OUTPUTS)] = False,
    confidence: Annotated[bool, typer.Option("--confidence", help="Also write the maximum probability (<mask>_confidence.tif).", rich_help_panel=OUTPUTS)] = False,
    prob_dtype: Annotated[str, typer.Option(help="uint8 (probability x 254, nodata 255) or float32.", rich_help_panel=OUTPUTS)] = "uint8",
    vector: Annotated[Path | None, typer.Option(help="Also write class polygons: a .gpkg file (one scene) or a folder (several scenes).", rich_help_panel=OUTPUTS)] = None,
    min_area: Annotated[float, typer.Option(help="Drop polygons smaller than this (CRS units², e.g. m²).", rich_help_panel=OUTPUTS)] = 0.0,
    simplify: Annotated[float, typer.Option(help="Polygon simplification tolerance (CRS units), 0 = none.", rich_help_panel=OUTPUTS)] = 0.0,
    cog: Annotated[bool, typer.Option("--cog", help="Write Cloud Optimised GeoTIFFs with overviews.", rich_help_panel=OUTPUTS)] = False,
    tile_size: Annotated[int | None, typer.Option(help="Window size (default: the checkpoint's).", rich_help_panel=ENGINE)] = None,
    overlap: Annotated[float | None, typer.Option(help="Window overlap: fraction (<1) or pixels (>=1); default 0.25.", rich_help_panel=ENGINE)] = None,
    blend: Annotated[str | None, typer.Option(help="hann, gaussian, triangular, spline, uniform or crop; default hann.", rich_help_panel=ENGINE)] = None,
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.", rich_help_panel=ENGINE)] = 4,
    tta: Annotated[str, typer.Option(help="Test-time augmentation: none, flip (2 views) or d4 (8 views).", rich_help_panel=ENGINE)] = "none",
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model (slow start, faster windows).", rich_help_panel=ENGINE)] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (torchrun: cuda:LOCAL_RANK).", rich_help_panel=ENGINE)] = "auto",
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16.", rich_help_panel=ENGINE)] = "auto",
    read_threads: Annotated[int, typer.Option(help="GDAL decoding threads of the background reader.", rich_help_panel=ENGINE)] = 2,
    bands: Annotated[str | None, typer.Option(help="Comma-separated names of the scene's bands.", rich_help_panel=INPUT)] = None,
    sensor: Annotated[str | None, typer.Option(help="Sensor preset naming the scene's bands.", rich_help_panel=INPUT)] = None,
    nodata: Annotated[float | None, typer.Option(help="Input nodata value (default: the scene's own; a scene declaring none has none, whatever the checkpoint was trained with).", rich_help_panel=INPUT)] = None,
    resolution: Annotated[str | None, typer.Option(help="Grid of scenes given as per-band files, SAFE folders or STAC items: a pixel size in CRS units (e.g. 10), a band name (its grid) or finest (default).", rich_help_panel=INPUT)] = None,
    resampling: Annotated[str, typer.Option(help="Resampling of reflectance bands onto that grid: bilinear, cubic, cubicspline, lanczos, average, mode or nearest (masks and classes: nearest).", rich_help_panel=INPUT)] = "bilinear",
    band_pattern: Annotated[str | None, typer.Option(help="Regular expression with a 'band' group naming the band of each file in a band folder (default: Sentinel-2 and Landsat names).", rich_help_panel=INPUT)] = None,
    gdal_config: Annotated[list[str] | None, typer.Option(help="GDAL option KEY=VALUE for remote scenes (repeatable), e.g. GDAL_HTTP_MAX_RETRY=5 or AWS_NO_SIGN_REQUEST=YES.", rich_help_panel=INPUT)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar per scene.")] = True,
) -> None:
    """Predict class masks with overlapping, blended windows; outputs keep the scene's georeferencing.

    Under `torchrun --nproc-per-node N`, scenes are shared out across the N processes
    (process k takes every N-th scene from the k-th), each on its own GPU.
    """
    from rich.console import Console
    from rich.table import Table

    from rs_vit.errors import ConfigError, InputError, OutputError
    from rs_vit.infer.blend import BLENDS
    from rs_vit.infer.engine import DEFAULT_BLEND, DEFAULT_OVERLAP, PROB_DTYPES, SlidingWindowPredictor, predict_scene
    from rs_vit.io.windows import overlap_pixels
    from rs_vit.models.registry import check_tile
    from rs_vit.infer.progress import rich_progress
    from rs_vit.infer.shard import current_rank, rank_device, shard
    from rs_vit.infer.tta import transforms
    from rs_vit.io.atomic import check_output
    from rs_vit.infer.onnx_backend import load_any_model, read_any_spec

    from rs_vit.io.bands import is_generic
    from rs_vit.io.labels import VECTOR_SUFFIXES
    from rs_vit.io.sources import ResolvedScene, is_remote, parse_gdal_options, resolve_scene, scene_name

    paths: list[str] = []  # as given: URLs must not become Paths (https:// would fold)
    for s in scenes:
        hits = sorted(glob.glob(s)) if any(ch in s for ch in "*?[") and not is_remote(s) else [s]
        if not hits:
            raise InputError(f"No file matches {s!r}; check the pattern.")
        paths.extend(hits)
    if len(paths) > 1 and out is not None:
        raise ConfigError(f"{len(paths)} scenes given: use --out-dir instead of --out.")
    if out is None and out_dir is None:
        raise ConfigError("Give --out mask.tif (one scene) or --out-dir folder/ (several scenes).")
    if out is not None and out.suffix.lower() not in (".tif", ".tiff"):
        hint = (f"for class polygons give --vector {out} (with --out {out.with_suffix('.tif')})"
                if out.suffix.lower() in VECTOR_SUFFIXES else f"name it {out.with_suffix('.tif')}")
        raise ConfigError(f"--out {out}: rs-vit writes the mask as a GeoTIFF (.tif); {hint}.")
    targets = [out] if out is not None else [Path(out_dir) / f"{scene_name(p)}_mask.tif" for p in paths]  # type: ignore[arg-type]
    many = out is None
    if vector is not None and many:
        if vector.suffix.lower() == ".gpkg":
            raise ConfigError(f"--vector {vector}: with --out-dir give a folder; each scene gets <name>_mask.gpkg.")
        vector.mkdir(parents=True, exist_ok=True)
    vectors = [(vector / f"{t.stem}.gpkg" if many else vector) if vector is not None else None for t in targets]
    rank = current_rank()
    if rank.distributed:  # each torchrun process takes its share of the scenes
        paths, targets, vectors = shard(paths, rank), shard(targets, rank), shard(vectors, rank)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    for folder in {t.parent for t in targets} | {v.parent for v in vectors if v is not None}:
        if str(folder) and not folder.exists():  # like --out-dir: a missing folder is created
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"Cannot create folder {folder} for the outputs ({exc.strerror}); "
                                  "choose another path.") from None
    for t in targets:  # fail before loading the model or reading anything
        check_output(t, overwrite=overwrite, label="output mask")
    band_list = [b.strip() for b in bands.split(",")] if bands else None
    spec = read_any_spec(checkpoint)  # check the options before loading weights or reading scenes
    tile = spec.tile_size if tile_size is None else tile_size
    check_tile(spec.name, tile, tile_multiple=spec.extra.get("tile_multiple"), fixed_tile=spec.extra.get("fixed_tile"))
    overlap_pixels(tile, DEFAULT_OVERLAP if overlap is None else overlap)
    if blend is not None and blend not in BLENDS:
        raise ConfigError(f"Unknown --blend {blend!r}; choose one of {', '.join(BLENDS)}.")
    transforms(tta)
    if prob_dtype not in PROB_DTYPES:
        raise ConfigError(f"Unknown --prob-dtype {prob_dtype!r}; choose uint8 or float32.")
    gdal_opts = parse_gdal_options(gdal_config)
    resolved: dict[str, ResolvedScene] = {}

    def source(p: str) -> tuple[Path, str | None]:
        """The raster to read for scene ``p`` (a VRT stacking a product's bands, only those the
        model needs) and the sensor preset to name its bands with (none: a stack is named)."""
        if p not in resolved:
            select = None if band_list or is_generic(spec.bands) else list(spec.bands)
            resolved[p] = resolve_scene(p, resolution=resolution, resampling=resampling, band_pattern=band_pattern,
                                        sensor=sensor, select=select, gdal_config=gdal_opts)
        r = resolved[p]
        return r.path, sensor if r.band_names is None else None

    if len(paths) == 1:  # a bad scene or band mismatch is reported before the weights load
        from rs_vit.io.bands import match_bands
        from rs_vit.io.raster import scene_info

        first, first_sensor = source(paths[0])
        info = scene_info(first, bands=band_list, sensor=first_sensor)
        match_bands(info.band_names, spec.bands, scene_label=f"Scene {info.path.name}")
    model, spec = load_any_model(checkpoint)
    predictor = SlidingWindowPredictor(
        model, spec, tile_size=tile_size, overlap=DEFAULT_OVERLAP if overlap is None else overlap,
        blend=blend or DEFAULT_BLEND, batch_size=batch_size, device=rank_device(device, rank),
        precision=precision, tta=tta, compile=compile, read_threads=read_threads)
    console = Console(stderr=True)
    prefix = f"[rank {rank.rank}/{rank.world}] " if rank.distributed else ""
    echo(f"{prefix}{len(paths)} scene(s); {spec.name}; {predictor.describe()}")

    def make_bar(total: int, name: str):
        return rich_progress(total, name, console=console, disable=not progress)

    results = []
    failed: list[str] = []
    for path, target, vec in zip(paths, targets, vectors):
        try:
            local, scene_sensor = source(path)
            r = predict_scene(local, target, predictor=predictor, bands=band_list, sensor=scene_sensor,
                          nodata=nodata, overwrite=overwrite, progress=make_bar,
                          probabilities=probabilities, confidence=confidence, prob_dtype=prob_dtype,
                          vector=vec, min_area=min_area, simplify=simplify, cog=cog)
        except InputError as exc:
            if len(paths) == 1:
                raise
            failed.append(scene_name(path))  # one bad scene does not stop a batch
            console.print(f"{prefix}{scene_name(path)}: skipped: {exc}", style="red", markup=False)
            continue
        results.append(r)
        for note in r.notes:  # which nodata and why; a scene far outside the training values
            console.print(f"{prefix}{note}", markup=False, highlight=False, soft_wrap=True)
        extra = "".join(f", {k} -> {v}" for k, v in r.outputs.items() if k != "mask")
        echo(f"{prefix}{r.scene.name}: {r.windows} windows ({r.windows_skipped} all-nodata skipped) in "
             f"{r.seconds:.1f}s, {r.windows_per_second:.1f} windows/s, {r.megapixels_per_second:.2f} MP/s "
             f"-> {r.out}{extra}")
    if len(results) > 1:
        table = Table(title=f"{prefix}{len(results)} scenes")
        for col in ("scene", "size", "windows", "skipped", "seconds", "win/s", "output"):
            table.add_column(col)
        for r in results:
            table.add_row(r.scene.name, f"{r.width}x{r.height}", str(r.windows), str(r.windows_skipped),
                          f"{r.seconds:.1f}", f"{r.windows_per_second:.1f}", str(r.out))
        total = sum(r.seconds for r in results)
        wins = sum(r.windows + r.windows_skipped for r in results)
        table.add_row("total", "", str(sum(r.windows for r in results)),
                      str(sum(r.windows_skipped for r in results)), f"{total:.1f}",
                      f"{wins / total:.1f}" if total else "", "")
        Console().print(table)
    if failed:
        raise InputError(f"{len(failed)} of {len(paths)} scenes could not be predicted ({', '.join(failed)}); "
                         "see the messages above.")
