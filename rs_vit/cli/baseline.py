"""``rs-vit baseline``: a per-pixel random forest / gradient boosting on the training pixels of a
training config, saved safely, scored on the validation split and predicted over whole scenes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rs_vit.cli.app import app, echo, handle_errors

DATA = "Data"
CLF = "Classifier"
OUT = "Output"


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


@app.command("baseline")
@handle_errors
def baseline_cmd(
    config: Annotated[Path | None, typer.Option("--config", "-c", exists=True, dir_okay=False,
                                               help="Training config (as for `rs-vit train`): the baseline uses its scenes, bands, classes, ignore values and spatial split.")] = None,
    image: Annotated[list[Path] | None, typer.Option("--image", help="Scene GeoTIFF (repeat for several).", rich_help_panel=DATA)] = None,
    labels: Annotated[list[Path] | None, typer.Option("--labels", help="Labels for each --image: raster on the scene grid or vector file.", rich_help_panel=DATA)] = None,
    classes: Annotated[Path | None, typer.Option("--classes", exists=True, dir_okay=False, help="YAML with classes: [{id, name, color}].", rich_help_panel=DATA)] = None,
    label_value: Annotated[int | None, typer.Option(help="Class id for every polygon of vector labels without a class attribute.", rich_help_panel=DATA)] = None,
    background: Annotated[int | None, typer.Option(help="Class id of pixels no polygon covers (default: ignored).", rich_help_panel=DATA)] = None,
    ignore_values: Annotated[str | None, typer.Option(help="Comma-separated label values to ignore (e.g. -1).", rich_help_panel=DATA)] = None,
    bands: Annotated[str | None, typer.Option(help="Comma-separated band names overriding the scene's descriptions.", rich_help_panel=DATA)] = None,
    sensor: Annotated[str | None, typer.Option(help="Sensor preset naming the bands (e.g. sentinel2_l1c).", rich_help_panel=DATA)] = None,
    val_fraction: Annotated[float | None, typer.Option(help="Share of each scene (rows or blocks) held out for validation.", rich_help_panel=DATA)] = None,
    split_mode: Annotated[str | None, typer.Option(help="rows (bottom rows) or blocks (seeded spatial blocks), as in training.", rich_help_panel=DATA)] = None,
    block_size: Annotated[int | None, typer.Option(help="Side of the split blocks in pixels (default 4 x tile size).", rich_help_panel=DATA)] = None,
    tile_size: Annotated[int | None, typer.Option(help="The training run's tile size (sets the default block size of a block split).", rich_help_panel=DATA)] = None,
    split_seed: Annotated[int | None, typer.Option(help="The training run's seed (chooses the validation blocks of a block split).", rich_help_panel=DATA)] = None,
    method: Annotated[str, typer.Option(help="random_forest or gradient_boosting (scikit-learn).", rich_help_panel=CLF)] = "random_forest",
    indices: Annotated[str | None, typer.Option(help="Comma-separated band indices added as features: ndvi, ndwi, mndwi, ndbi (need named bands).", rich_help_panel=CLF)] = None,
    max_pixels: Annotated[int, typer.Option(help="Cap on training pixels, class-balanced (at most max_pixels / classes per class).", rich_help_panel=CLF)] = 200_000,
    n_estimators: Annotated[int, typer.Option(help="Trees of the forest, or boosting iterations.", rich_help_panel=CLF)] = 100,
    max_depth: Annotated[int | None, typer.Option(help="Maximum tree depth (default: unlimited forest trees; 31-leaf boosting trees).", rich_help_panel=CLF)] = None,
    min_samples_leaf: Annotated[int | None, typer.Option(help="Minimum pixels per leaf (default: scikit-learn's, 1 forest / 20 boosting).", rich_help_panel=CLF)] = None,
    learning_rate: Annotated[float, typer.Option(help="Boosting learning rate.", rich_help_panel=CLF)] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the pixel sample and of the classifier.", rich_help_panel=CLF)] = 0,
    jobs: Annotated[int, typer.Option(help="Threads for fitting the forest (-1: all cores).", rich_help_panel=CLF)] = -1,
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", help="Folder for the baseline, metrics.json and masks/.", rich_help_panel=OUT)] = Path("runs/baseline"),
    model_dir: Annotated[Path | None, typer.Option("--model", exists=True, file_okay=False, help="Use this saved baseline instead of fitting one (with --predict).", rich_help_panel=OUT)] = None,
    predict: Annotated[list[Path] | None, typer.Option("--predict", exists=True, dir_okay=False, help="Scene to predict into OUT_DIR/masks/<scene>_mask.tif (repeat; default: every scene of the config).", rich_help_panel=OUT)] = None,
    no_masks: Annotated[bool, typer.Option("--no-masks", help="Do not write whole-scene masks.", rich_help_panel=OUT)] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder / masks.", rich_help_panel=OUT)] = False,
) -> None:
    """Per-pixel baseline: fit a random forest (or gradient boosting) on the training pixels of a
    training config, score it on the validation split like a model, and write whole-scene masks.

    The baseline is saved as arrays (baseline.safetensors + baseline.json with a SHA-256; nothing is
    pickled). Compare its mIoU with `rs-vit train` / `rs-vit evaluate` on the same config, or add
    `baseline: random_forest` to an `rs-vit compare` grid.
    """
    from rs_vit.baseline import BaselineOptions, load_baseline, predict_baseline_scene, run_baseline
    from rs_vit.config import load_classes, load_config
    from rs_vit.errors import ConfigError

    if model_dir is not None:
        if not predict:
            raise ConfigError("--model predicts with a saved baseline: give the scenes with --predict.")
        clf = load_baseline(model_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for scene in predict:
            out = out_dir / f"{scene.stem}_mask.tif"
            r = predict_baseline_scene(clf, scene, out, bands=_csv(bands) or None, sensor=sensor,
                                       overwrite=overwrite)
            echo(f"Mask {r.out} ({r.width} x {r.height} px, {r.seconds:.1f}s)")
        return
    overrides: dict = {
        "data.bands": _csv(bands) or None, "data.sensor": sensor, "data.val_fraction": val_fraction,
        "data.split_mode": split_mode, "data.block_size": block_size, "data.background": background,
        "data.ignore_values": [int(v) for v in _csv(ignore_values)] or None,
        "train.tile_size": tile_size, "train.seed": split_seed,
    }
    if classes:
        overrides["data.classes"] = [c.model_dump() for c in load_classes(classes)]
    if image:
        if labels is None or len(labels) != len(image):
            raise ConfigError(f"Give one --labels per --image (got {len(image)} images, {len(labels or [])} labels).")
        overrides["data.scenes"] = [
            {"image": str(img), "labels": str(lab), **({"label_value": label_value} if label_value is not None else {})}
            for img, lab in zip(image, labels)]
    elif labels:
        raise ConfigError("--labels needs --image (one scene per label file).")
    cfg = load_config(config, overrides)
    opts = BaselineOptions(method=method, indices=tuple(_csv(indices)), max_pixels=max_pixels,
                           n_estimators=n_estimators, max_depth=max_depth, min_samples_leaf=min_samples_leaf,
                           learning_rate=learning_rate, seed=seed, n_jobs=jobs)
    res = run_baseline(cfg, out_dir, opts, predict=[] if no_masks else predict, overwrite=overwrite, log=echo)
    echo(f"Baseline: {res.model_dir}")
    if res.metrics is not None:
        echo(f"Metrics: {res.out_dir / 'metrics.json'}")
