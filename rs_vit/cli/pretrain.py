"""``rs-vit pretrain``: self-supervised masked image modelling on unlabelled scenes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from rs_vit.cli.app import app, echo, handle_errors

DATA = "Data"
MODEL = "Model"
LOOP = "Training loop"
MIM = "Masked image modelling"


def _split_csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@app.command("pretrain")
@handle_errors
def pretrain_cmd(
    config: Annotated[Path | None, typer.Option("--config", "-c", exists=True, dir_okay=False,
                                               help="YAML config (data, model, train, pretrain sections; a training config works); flags override it.")] = None,
    image: Annotated[list[Path] | None, typer.Option("--image", help="Scene GeoTIFF (repeat for several); labels are not needed.", rich_help_panel=DATA)] = None,
    bands: Annotated[str | None, typer.Option(help="Comma-separated band names overriding the scene's descriptions.", rich_help_panel=DATA)] = None,
    sensor: Annotated[str | None, typer.Option(help="Sensor preset naming the bands (e.g. sentinel2_l1c, naip).", rich_help_panel=DATA)] = None,
    chips: Annotated[Path | None, typer.Option(exists=True, file_okay=False, help="Chip folder from `rs-vit tile` (its images/ are used).", rich_help_panel=DATA)] = None,
    area: Annotated[str | None, typer.Option(help="all: every valid pixel; train: only the training area of the split `rs-vit train` makes (same data options and seed).", rich_help_panel=DATA)] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Registered model name whose encoder is pretrained (see `rs-vit models`).", rich_help_panel=MODEL)] = None,
    pretrained: Annotated[str | None, typer.Option(help="Continue from 'imagenet' (or a timm tag): domain-adaptive pretraining.", rich_help_panel=MODEL)] = None,
    weights: Annotated[Path | None, typer.Option(exists=True, help="Continue from a local weights file or rs-vit checkpoint (bands matched by name).", rich_help_panel=MODEL)] = None,
    method: Annotated[str | None, typer.Option(help="auto (MAE for plain ViTs, SimMIM otherwise), mae or simmim.", rich_help_panel=MIM)] = None,
    mask_ratio: Annotated[float | None, typer.Option(help="Share of squares masked (default 0.75 MAE, 0.6 SimMIM).", rich_help_panel=MIM)] = None,
    mask_patch: Annotated[int | None, typer.Option(help="Side of a masked square in pixels (default: ViT patch for MAE, 32 for SimMIM).", rich_help_panel=MIM)] = None,
    norm_pix_loss: Annotated[bool | None, typer.Option("--norm-pix-loss/--raw-pix-loss", help="Targets normalised per patch and band (default: on for MAE, off for SimMIM).", rich_help_panel=MIM)] = None,
    epochs: Annotated[int | None, typer.Option(help="Number of epochs.", rich_help_panel=LOOP)] = None,
    steps_per_epoch: Annotated[int | None, typer.Option(help="Optimiser steps per epoch.", rich_help_panel=LOOP)] = None,
    batch_size: Annotated[int | None, typer.Option(help="Windows per step.", rich_help_panel=LOOP)] = None,
    tile_size: Annotated[int | None, typer.Option(help="Window size in pixels (a multiple of the mask patch).", rich_help_panel=LOOP)] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (AdamW).", rich_help_panel=LOOP)] = None,
    precision: Annotated[str | None, typer.Option(help="auto, fp32, bf16 or fp16.", rich_help_panel=LOOP)] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.", rich_help_panel=LOOP)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.", rich_help_panel=LOOP)] = None,
    resume: Annotated[Path | None, typer.Option(exists=True, file_okay=False, help="Continue the pretraining run in this directory from its last checkpoint (--epochs extends it).", rich_help_panel=LOOP)] = None,
    out_dir: Annotated[Path | None, typer.Option("--out-dir", "-o", help="Run directory to create.", rich_help_panel=LOOP)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Pretrain a model's encoder on unlabelled scenes (masked image modelling); writes RUN/encoder,
    the checkpoint `rs-vit train --init-from RUN/encoder` starts from.

    Several GPUs or nodes: torchrun --nproc_per_node=4 -m rs_vit pretrain ...
    """
    from rs_vit.config import PretrainRunConfig, load_config
    from rs_vit.train.pretrain import pretrain, resume_pretrain

    if resume is not None:
        result = resume_pretrain(resume, log=echo, progress=progress, epochs=epochs)
    else:
        overrides: dict = {
            "model.name": model, "model.pretrained": pretrained, "model.weights": str(weights) if weights else None,
            "train.epochs": epochs, "train.steps_per_epoch": steps_per_epoch, "train.batch_size": batch_size,
            "train.tile_size": tile_size, "train.lr": lr, "train.precision": precision, "train.device": device,
            "train.seed": seed, "train.out_dir": str(out_dir) if out_dir else None,
            "train.overwrite": True if overwrite else None,
            "data.bands": _split_csv(bands), "data.sensor": sensor, "data.chips": str(chips) if chips else None,
            "pretrain.area": area, "pretrain.method": method, "pretrain.mask_ratio": mask_ratio,
            "pretrain.mask_patch": mask_patch, "pretrain.norm_pix_loss": norm_pix_loss,
        }
        if image:
            overrides["data.scenes"] = [{"image": str(p)} for p in image]
        cfg = load_config(config, overrides, schema=PretrainRunConfig)
        assert isinstance(cfg, PretrainRunConfig)
        result = pretrain(cfg, log=echo, progress=progress)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return
    echo(f"Run directory: {result.run_dir}")
    echo(f"Encoder checkpoint: {result.encoder_checkpoint} (rs-vit train --init-from {result.encoder_checkpoint})")
