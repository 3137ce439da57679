"""``rs-vit train``: train a segmentation model from a YAML config and/or flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rs_vit.cli.app import app, echo, handle_errors

DATA = "Data"
MODEL = "Model"
LOOP = "Training loop"


def _split_csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@app.command("train")
@handle_errors
def train_cmd(
    config: Annotated[Path | None, typer.Option("--config", "-c", exists=True, dir_okay=False,
                                               help="YAML config (data, model, train sections); flags override it.")] = None,
    image: Annotated[list[Path] | None, typer.Option("--image", help="Scene GeoTIFF (repeat for several).", rich_help_panel=DATA)] = None,
    labels: Annotated[list[Path] | None, typer.Option("--labels", help="Labels for each --image: raster on the scene grid or vector file.", rich_help_panel=DATA)] = None,
    classes: Annotated[Path | None, typer.Option("--classes", exists=True, dir_okay=False, help="YAML with classes: [{id, name, color}].", rich_help_panel=DATA)] = None,
    label_attribute: Annotated[str | None, typer.Option(help="Vector attribute holding the class id.", rich_help_panel=DATA)] = None,
    bands: Annotated[str | None, typer.Option(help="Comma-separated band names overriding the scene's descriptions.", rich_help_panel=DATA)] = None,
    sensor: Annotated[str | None, typer.Option(help="Sensor preset naming the bands (e.g. sentinel2_l1c, naip).", rich_help_panel=DATA)] = None,
    val_fraction: Annotated[float | None, typer.Option(help="Share of each scene's rows held out for validation.", rich_help_panel=DATA)] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Registered model name (see `rs-vit models`).", rich_help_panel=MODEL)] = None,
    pretrained: Annotated[str | None, typer.Option(help="'imagenet' or a timm tag; default: train from scratch.", rich_help_panel=MODEL)] = None,
    epochs: Annotated[int | None, typer.Option(help="Number of epochs.", rich_help_panel=LOOP)] = None,
    steps_per_epoch: Annotated[int | None, typer.Option(help="Optimiser steps per epoch.", rich_help_panel=LOOP)] = None,
    batch_size: Annotated[int | None, typer.Option(help="Windows per step.", rich_help_panel=LOOP)] = None,
    tile_size: Annotated[int | None, typer.Option(help="Training window size in pixels.", rich_help_panel=LOOP)] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (AdamW).", rich_help_panel=LOOP)] = None,
    precision: Annotated[str | None, typer.Option(help="auto, fp32, bf16 or fp16.", rich_help_panel=LOOP)] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.", rich_help_panel=LOOP)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.", rich_help_panel=LOOP)] = None,
    out_dir: Annotated[Path | None, typer.Option("--out-dir", "-o", help="Run directory to create.", rich_help_panel=LOOP)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train a segmentation model; writes config.yaml, metrics.csv and the best/ and last/ checkpoints."""
    from rs_vit.config import load_classes, load_config
    from rs_vit.errors import ConfigError
    from rs_vit.train.loop import train

    overrides: dict = {
        "model.name": model, "model.pretrained": pretrained, "train.epochs": epochs,
        "train.steps_per_epoch": steps_per_epoch, "train.batch_size": batch_size,
        "train.tile_size": tile_size, "train.lr": lr, "train.precision": precision,
        "train.device": device, "train.seed": seed, "train.out_dir": str(out_dir) if out_dir else None,
        "data.bands": _split_csv(bands), "data.sensor": sensor, "data.val_fraction": val_fraction,
        "train.overwrite": True if overwrite else None,
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
            scenes.append(s)
        overrides["data.scenes"] = scenes
    elif labels:
        raise ConfigError("--labels needs --image (one scene per label file).")
    cfg = load_config(config, overrides)
    result = train(cfg, log=echo, progress=progress)
    echo(f"Best validation mIoU {result.best_miou:.4f} at epoch {result.best_epoch}")
    echo(f"Run directory: {result.run_dir}")
    echo(f"Best checkpoint: {result.best_checkpoint}")
