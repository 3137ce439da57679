"""``rs-vit train``: train a segmentation model from a YAML config and/or flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from rs_vit.cli.app import app, echo, handle_errors

DATA = "Data"
MODEL = "Model"
LOOP = "Training loop"
DIST = "Distillation"


def _split_csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@app.command("train")
@handle_errors
def train_cmd(
    config: Annotated[Path | None, typer.Option("--config", "-c", exists=True, dir_okay=False,
                                               help="YAML config (data, model, train sections); flags override it.")] = None,
    image: Annotated[list[str] | None, typer.Option("--image", help="Scene (repeat for several): a GeoTIFF, a folder of per-band files, a SAFE folder, a STAC item or a URL.", rich_help_panel=DATA)] = None,
    labels: Annotated[list[Path] | None, typer.Option("--labels", help="Labels for each --image: raster on the scene grid or vector file.", rich_help_panel=DATA)] = None,
    classes: Annotated[Path | None, typer.Option("--classes", exists=True, dir_okay=False, help="YAML with classes: [{id, name, color}].", rich_help_panel=DATA)] = None,
    label_attribute: Annotated[str | None, typer.Option(help="Vector attribute holding the class id.", rich_help_panel=DATA)] = None,
    bands: Annotated[str | None, typer.Option(help="Comma-separated band names overriding the scene's descriptions.", rich_help_panel=DATA)] = None,
    sensor: Annotated[str | None, typer.Option(help="Sensor preset naming the bands (e.g. sentinel2_l1c, naip).", rich_help_panel=DATA)] = None,
    val_fraction: Annotated[float | None, typer.Option(help="Share of each scene (rows or blocks) held out for validation.", rich_help_panel=DATA)] = None,
    split_mode: Annotated[str | None, typer.Option(help="rows (bottom rows) or blocks (seeded spatial blocks).", rich_help_panel=DATA)] = None,
    block_size: Annotated[int | None, typer.Option(help="Side of the split blocks in pixels (default 4 x tile size).", rich_help_panel=DATA)] = None,
    chips: Annotated[Path | None, typer.Option(exists=True, file_okay=False, help="Chip folder from `rs-vit tile` (images/, masks/).", rich_help_panel=DATA)] = None,
    label_value: Annotated[int | None, typer.Option(help="Class id for every polygon of vector labels without a class attribute.", rich_help_panel=DATA)] = None,
    background: Annotated[int | None, typer.Option(help="Class id of pixels no polygon covers (default: ignored).", rich_help_panel=DATA)] = None,
    ignore_values: Annotated[str | None, typer.Option(help="Comma-separated label values to ignore (e.g. -1).", rich_help_panel=DATA)] = None,
    class_balanced: Annotated[float | None, typer.Option(help="Share of windows centred on a uniformly drawn class (0..1).", rich_help_panel=DATA)] = None,
    resolution: Annotated[str | None, typer.Option(help="Grid of scenes given as per-band files, SAFE folders or STAC items: a pixel size in CRS units, a band name or finest (default).", rich_help_panel=DATA)] = None,
    resampling: Annotated[str | None, typer.Option(help="Resampling of reflectance bands onto that grid (bilinear, cubic, average, ...; masks: nearest).", rich_help_panel=DATA)] = None,
    band_pattern: Annotated[str | None, typer.Option(help="Regular expression with a 'band' group naming the band of each file in a band folder.", rich_help_panel=DATA)] = None,
    gdal_config: Annotated[list[str] | None, typer.Option(help="GDAL option KEY=VALUE for remote scenes (repeatable).", rich_help_panel=DATA)] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Registered model name (see `rs-vit models`).", rich_help_panel=MODEL)] = None,
    pretrained: Annotated[str | None, typer.Option(help="'imagenet', a timm tag, or geospatial weights from `rs-vit weights` (e.g. ssl4eo_s12_moco); default: train from scratch.", rich_help_panel=MODEL)] = None,
    weights: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="Local weights file to start from (timm/smp layout, or the published layout of --weights-source).", rich_help_panel=MODEL)] = None,
    weights_source: Annotated[str | None, typer.Option(help="Catalogue entry (`rs-vit weights`) describing --weights: bands, key layout, normalisation.", rich_help_panel=MODEL)] = None,
    normalize: Annotated[str | None, typer.Option(help="auto, weights (the catalogue entry's scaling and statistics) or data (training-pixel statistics).", rich_help_panel=MODEL)] = None,
    epochs: Annotated[int | None, typer.Option(help="Number of epochs.", rich_help_panel=LOOP)] = None,
    steps_per_epoch: Annotated[int | None, typer.Option(help="Optimiser steps per epoch.", rich_help_panel=LOOP)] = None,
    batch_size: Annotated[int | None, typer.Option(help="Windows per step.", rich_help_panel=LOOP)] = None,
    tile_size: Annotated[int | None, typer.Option(help="Training window size in pixels.", rich_help_panel=LOOP)] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (AdamW).", rich_help_panel=LOOP)] = None,
    optimizer: Annotated[str | None, typer.Option(help="adamw or sgd.", rich_help_panel=LOOP)] = None,
    layer_decay: Annotated[float | None, typer.Option(help="Layer-wise lr decay of the encoder (e.g. 0.75).", rich_help_panel=LOOP)] = None,
    loss: Annotated[str | None, typer.Option(help="ce, dice, focal, lovasz or sums like ce+dice, ce:1+lovasz:0.5.", rich_help_panel=LOOP)] = None,
    grad_accum: Annotated[int | None, typer.Option(help="Batches accumulated per optimiser step.", rich_help_panel=LOOP)] = None,
    early_stopping: Annotated[int | None, typer.Option(help="Stop after N epochs without a better val mIoU.", rich_help_panel=LOOP)] = None,
    drop_path_rate: Annotated[float | None, typer.Option(help="Stochastic depth of transformer encoders.", rich_help_panel=MODEL)] = None,
    init_from: Annotated[Path | None, typer.Option(exists=True, help="Start from an rs-vit checkpoint's weights.", rich_help_panel=MODEL)] = None,
    resume: Annotated[Path | None, typer.Option(exists=True, file_okay=False, help="Continue the run in this directory from its last checkpoint (other options are taken from its config.yaml; --epochs extends it).", rich_help_panel=LOOP)] = None,
    teacher: Annotated[Path | None, typer.Option(exists=True, help="Teacher checkpoint for DeiT-style distillation.", rich_help_panel=DIST)] = None,
    distill_alpha: Annotated[float | None, typer.Option(help="Weight of the distillation loss (0..1).", rich_help_panel=DIST)] = None,
    distill_temperature: Annotated[float | None, typer.Option(help="Softmax temperature of the soft targets.", rich_help_panel=DIST)] = None,
    distill_mode: Annotated[str | None, typer.Option(help="soft, hard or both.", rich_help_panel=DIST)] = None,
    precision: Annotated[str | None, typer.Option(help="auto, fp32, bf16 or fp16.", rich_help_panel=LOOP)] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.", rich_help_panel=LOOP)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.", rich_help_panel=LOOP)] = None,
    out_dir: Annotated[Path | None, typer.Option("--out-dir", "-o", help="Run directory to create.", rich_help_panel=LOOP)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train a segmentation model; writes config.yaml, metrics.csv, plots and the best/ and last/ checkpoints.

    Several GPUs or nodes: torchrun --nproc_per_node=4 -m rs_vit train ...
    """
    from rs_vit.config import load_classes, load_config
    from rs_vit.errors import ConfigError
    from rs_vit.io.sources import parse_gdal_options
    from rs_vit.train.loop import resume as resume_run
    from rs_vit.train.loop import train

    if resume is not None:
        result = resume_run(resume, log=echo, progress=progress, epochs=epochs)
        if int(os.environ.get("RANK", "0")) != 0:
            return
        echo(f"Best validation mIoU {result.best_miou:.4f} at epoch {result.best_epoch}")
        echo(f"Run directory: {result.run_dir}")
        return
    overrides: dict = {
        "model.name": model, "model.pretrained": pretrained,
        "model.weights": str(weights) if weights else None, "model.weights_source": weights_source,
        "model.normalize": normalize, "train.epochs": epochs,
        "train.steps_per_epoch": steps_per_epoch, "train.batch_size": batch_size,
        "train.tile_size": tile_size, "train.lr": lr, "train.precision": precision,
        "train.device": device, "train.seed": seed, "train.out_dir": str(out_dir) if out_dir else None,
        "data.bands": _split_csv(bands), "data.sensor": sensor, "data.val_fraction": val_fraction,
        "train.overwrite": True if overwrite else None,
        "data.split_mode": split_mode, "data.block_size": block_size,
        "data.chips": str(chips) if chips else None, "data.background": background,
        "data.class_balanced": class_balanced,
        "data.resolution": resolution, "data.resampling": resampling, "data.band_pattern": band_pattern,
        "data.gdal_config": parse_gdal_options(gdal_config) or None,
        "data.ignore_values": [int(v) for v in _split_csv(ignore_values) or []] or None,
        "train.optimizer": optimizer, "train.layer_decay": layer_decay, "train.loss": loss,
        "train.grad_accum": grad_accum, "train.early_stopping": early_stopping,
        "model.drop_path_rate": drop_path_rate, "train.init_from": str(init_from) if init_from else None,
        "distill.teacher": str(teacher) if teacher else None, "distill.alpha": distill_alpha,
        "distill.temperature": distill_temperature, "distill.mode": distill_mode,
    }
    if classes:
        overrides["data.classes"] = [c.model_dump() for c in load_classes(classes)]
    if image:
        if labels and len(labels) != len(image):
            raise ConfigError(f"Give one --labels per --image (got {len(image)} images, {len(labels)} labels).")
        scenes = []
        for i, img in enumerate(image):
            s = {"image": str(img), "labels": str(labels[i]) if labels else None}
            if label_attribute:
                s["label_attribute"] = label_attribute
            if label_value is not None:
                s["label_value"] = label_value
            scenes.append(s)
        overrides["data.scenes"] = scenes
    elif labels:
        raise ConfigError("--labels needs --image (one scene per label file).")
    cfg = load_config(config, overrides)
    result = train(cfg, log=echo, progress=progress)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return
    echo(f"Best validation mIoU {result.best_miou:.4f} at epoch {result.best_epoch}")
    echo(f"Run directory: {result.run_dir}")
    echo(f"Best checkpoint: {result.best_checkpoint}")
