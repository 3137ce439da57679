"""The training loop: AdamW with warm-up and cosine decay, mixed precision, validation mIoU,
best and last checkpoints, metrics CSV, and the resolved config saved in the run directory."""

from __future__ import annotations

import csv
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from rs_vit.config import RunConfig, dump_config
from rs_vit.data.datasets import GridWindows, RandomWindows
from rs_vit.data.scenes import LabeledScene, load_scene
from rs_vit.data.stats import BandStats
from rs_vit.device import autocast, precision_name, resolve_device, resolve_precision
from rs_vit.errors import ConfigError, OutputError
from rs_vit.evaluate.metrics import ConfusionMatrix, compute_metrics
from rs_vit.models.checkpoint import ModelSpec, save_checkpoint
from rs_vit.models.registry import check_tile_size, create_model, get_entry


@dataclass
class TrainResult:
    """Where a run wrote its outputs and how it ended."""

    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_miou: float
    best_epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _default_augment():
    import albumentations as A

    return A.Compose([A.D4(p=1.0)])


def _lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return f


def prepare_run_dir(out_dir: Path, overwrite: bool) -> Path:
    """Create the run directory; an existing non-empty one needs ``overwrite``."""
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise OutputError(
                f"Run directory {out_dir} already exists and is not empty; pass --overwrite or "
                "choose another --out-dir."
            )
        shutil.rmtree(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create run directory {out_dir} ({exc.strerror}).") from None
    return out_dir


@torch.no_grad()
def validate(model: nn.Module, loader: DataLoader, num_classes: int, ignore_index: int,
             device: torch.device, dtype: torch.dtype | None, class_names: list[str],
             channels_last: bool = True) -> dict[str, Any]:
    """Confusion-matrix metrics of ``model`` over a validation loader."""
    model.eval()
    cm = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    loss_sum, n = 0.0, 0
    crit = nn.CrossEntropyLoss(ignore_index=ignore_index, reduction="sum")
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, dtype):
            logits = model(x)
        loss_sum += float(crit(logits.float(), y))
        n += int((y != ignore_index).sum())
        cm.update(logits.argmax(1).cpu().numpy(), y.cpu().numpy())
    metrics = compute_metrics(cm.matrix, class_names)
    metrics["loss"] = loss_sum / max(n, 1)
    return metrics


def train(config: RunConfig, *, log: Callable[[str], None] = print, progress: bool = True) -> TrainResult:
    """Train a model as configured and write the run directory.

    The run directory holds ``config.yaml`` (the resolved config), ``metrics.csv`` (one row per
    epoch) and the checkpoints ``best/`` (highest validation mIoU) and ``last/``.
    """
    data, mcfg, tcfg = config.data, config.model, config.train
    if not data.scenes:
        raise ConfigError("data.scenes is empty; give at least one scene with labels (--image/--labels).")
    if len(data.classes) < 2:
        raise ConfigError("data.classes must declare at least two classes (e.g. --classes classes.yaml).")
    entry = get_entry(mcfg.name)
    check_tile_size(mcfg.name, tcfg.tile_size)
    seed_everything(tcfg.seed)
    device = resolve_device(tcfg.device)
    dtype = resolve_precision(tcfg.precision, device)
    run_dir = prepare_run_dir(Path(tcfg.out_dir), tcfg.overwrite)
    (run_dir / "config.yaml").write_text(dump_config(config))

    # -- data ----------------------------------------------------------------------------------
    scenes: list[LabeledScene] = []
    bands: list[str] | None = None
    for sd in data.scenes:
        s = load_scene(sd, data, bands)
        bands = bands or s.info.band_names
        scenes.append(s)
    assert bands is not None
    if not any(s.train_rows[1] > s.train_rows[0] for s in scenes):
        raise ConfigError("No scene has a training area; set split: train on a scene or lower val_fraction.")
    if not any(s.val_rows[1] > s.val_rows[0] for s in scenes):
        raise ConfigError("No scene has a validation area; set split: val on a scene or val_fraction > 0.")
    stats = BandStats(len(bands))
    for s in scenes:
        r0, r1 = s.train_rows
        stats.update(s.image[:, r0:r1], ~s.invalid[r0:r1])
    mean, std = stats.result("training area")
    class_names = [c.name for c in data.classes]
    K = len(class_names)
    log(f"Bands: {', '.join(bands)} | classes: {', '.join(class_names)} | device: {device}"
        f" | precision: {precision_name(dtype)}")
    log("Model: " + mcfg.name + (f" (pretrained: {mcfg.pretrained})" if mcfg.pretrained else
                                 " (trained from scratch: no pretrained weights)"))

    train_ds = RandomWindows(scenes, tcfg.tile_size, tcfg.steps_per_epoch * tcfg.batch_size, mean, std,
                             data.ignore_index, seed=tcfg.seed, augment=_default_augment())
    val_ds = GridWindows(scenes, tcfg.tile_size, mean, std, data.ignore_index)
    g = torch.Generator().manual_seed(tcfg.seed)
    train_dl = DataLoader(train_ds, batch_size=tcfg.batch_size, shuffle=True, generator=g,
                          num_workers=tcfg.num_workers, drop_last=True)
    val_dl = DataLoader(val_ds, batch_size=tcfg.batch_size, num_workers=tcfg.num_workers)

    # -- model ---------------------------------------------------------------------------------
    model = create_model(
        mcfg.name, in_channels=len(bands), num_classes=K, pretrained=mcfg.pretrained,
        weights=str(mcfg.weights) if mcfg.weights else None, band_names=bands,
        band_init=mcfg.band_init, drop_path_rate=mcfg.drop_path_rate, **mcfg.kwargs,
    ).to(device).to(memory_format=torch.channels_last)
    spec = ModelSpec(
        name=mcfg.name, in_channels=len(bands), num_classes=K, bands=list(bands),
        mean=[float(v) for v in mean], std=[float(v) for v in std],
        classes=[c.model_dump(mode="json") for c in data.classes], tile_size=tcfg.tile_size,
        nodata=scenes[0].info.nodata, ignore_index=data.ignore_index, model_kwargs=dict(mcfg.kwargs),
        drop_path_rate=mcfg.drop_path_rate, extra={"family": entry.family},
    )
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    total_steps = tcfg.epochs * len(train_dl)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(min(tcfg.warmup_steps, total_steps // 2), total_steps))
    scaler = torch.amp.GradScaler(device.type, enabled=(dtype == torch.float16))
    crit = nn.CrossEntropyLoss(ignore_index=data.ignore_index)

    history: list[dict[str, Any]] = []
    best_miou, best_epoch = -1.0, 0
    csv_path = run_dir / "metrics.csv"
    fields = ["epoch", "train_loss", "val_loss", "val_miou", "val_overall_accuracy", "val_mean_f1", "lr",
              "seconds", *[f"iou_{n}" for n in class_names]]
    with open(csv_path, "w", newline="") as fh:
        csv.DictWriter(fh, fieldnames=fields).writeheader()

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    for epoch in range(1, tcfg.epochs + 1):
        model.train()
        train_ds.set_epoch(epoch)
        t0 = time.perf_counter()
        loss_sum = 0.0
        with Progress(TextColumn(f"epoch {epoch}/{tcfg.epochs}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn(),
                      disable=not progress, transient=True) as bar:
            task = bar.add_task("train", total=len(train_dl), loss=float("nan"))
            for step, (x, y) in enumerate(train_dl, 1):
                x = x.to(device).contiguous(memory_format=torch.channels_last)
                y = y.to(device)
                with autocast(device, dtype):
                    logits = model(x)
                loss = crit(logits.float(), y)
                if not torch.isfinite(loss):
                    raise RuntimeError(f"Training loss became {loss.item()} at epoch {epoch}, step {step}; "
                                       "lower --lr or use --precision fp32.")
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                sched.step()
                loss_sum += float(loss.detach())
                bar.update(task, advance=1, loss=loss_sum / step)
        train_loss = loss_sum / len(train_dl)
        m = validate(model, val_dl, K, data.ignore_index, device, dtype, class_names)
        row = {
            "epoch": epoch, "train_loss": round(train_loss, 5), "val_loss": round(m["loss"], 5),
            "val_miou": _r(m["miou"]), "val_overall_accuracy": _r(m["overall_accuracy"]),
            "val_mean_f1": _r(m["mean_f1"]), "lr": f"{sched.get_last_lr()[0]:.3g}",
            "seconds": round(time.perf_counter() - t0, 1),
            **{f"iou_{pc['name']}": _r(pc["iou"]) for pc in m["per_class"]},
        }
        history.append(row)
        with open(csv_path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=fields).writerow(row)
        miou = m["miou"] if m["miou"] is not None else 0.0
        per_class = " ".join(f"{pc['name']}={_r(pc['iou'])}" for pc in m["per_class"])
        log(f"epoch {epoch}/{tcfg.epochs}  train loss {train_loss:.4f}  val loss {m['loss']:.4f}  "
            f"val mIoU {miou:.4f}  ({per_class})  {row['seconds']}s")
        spec.extra.update({"epoch": epoch, "val_miou": miou})
        if miou > best_miou:
            best_miou, best_epoch = miou, epoch
            save_checkpoint(run_dir / "best", model, spec, extra_files={"config.yaml": dump_config(config)})
    save_checkpoint(run_dir / "last", model, spec, extra_files={"config.yaml": dump_config(config)})
    return TrainResult(run_dir, run_dir / "best", run_dir / "last", best_miou, best_epoch, history)


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)
