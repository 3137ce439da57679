"""The training loop.

AdamW (or SGD) with warm-up and cosine decay, optional layer-wise lr decay, gradient clipping and
accumulation, mixed precision (bf16/fp16), channels-last, smp losses, optional DeiT-style
distillation, early stopping, the best (validation mIoU) and last checkpoints, a metrics CSV
(and TensorBoard when installed), PNG plots, ``resume`` from a run directory, and DDP when
launched by torchrun. Deterministic for a given seed.
"""

from __future__ import annotations

import csv
import random
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from rs_vit.config import RunConfig, SceneDef, dump_config, load_config
from rs_vit.data.augment import Augment
from rs_vit.data.datasets import GridWindows, RandomWindows
from rs_vit.data.scenes import LabeledScene, load_scene
from rs_vit.data.split import TRAIN, VAL
from rs_vit.data.stats import training_stats, training_value_range
from rs_vit.device import Rank, autocast, precision_name, resolve_device, resolve_precision
from rs_vit.errors import CheckpointError, ConfigError, OutputError
from rs_vit.evaluate.metrics import ConfusionMatrix, compute_metrics
from rs_vit.io.atomic import atomic_write_text
from rs_vit.models.checkpoint import ModelSpec, save_checkpoint
from rs_vit.models.registry import check_tile_size, create_model, get_entry
from rs_vit.train.ddp import all_reduce_sum, barrier, cleanup, init_distributed
from rs_vit.train.losses import SegLoss
from rs_vit.train.optim import build_optimizer, lr_lambda, optimizer_step
from rs_vit.train.resume import STATE_FILE, dump_train_state, load_train_state, set_rng_state


@dataclass
class TrainResult:
    """Where a run wrote its outputs and how it ended."""

    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_miou: float
    best_epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_run_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse an existing non-empty run directory (without ``overwrite``) before any work is done."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"Run directory {out_dir} is a file; choose another --out-dir.")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise OutputError(
            f"Run directory {out_dir} already exists and is not empty; pass --overwrite, "
            "--resume it, or choose another --out-dir."
        )


def prepare_run_dir(out_dir: Path, overwrite: bool) -> Path:
    """Create the run directory; an existing non-empty one needs ``overwrite``."""
    check_run_dir(out_dir, overwrite)
    if out_dir.exists() and any(out_dir.iterdir()):
        shutil.rmtree(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create run directory {out_dir} ({exc.strerror}).") from None
    return out_dir


@torch.no_grad()
def validate(model: nn.Module, loader: DataLoader, num_classes: int, ignore_index: int,
             device: torch.device, dtype: torch.dtype | None, class_names: list[str],
             channels_last: bool = True, dist_info: Rank | None = None) -> dict[str, Any]:
    """Confusion-matrix metrics of ``model`` over a validation loader (summed over DDP ranks)."""
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
        if bool((y != ignore_index).any()):
            loss_sum += float(crit(logits.float(), y))
        n += int((y != ignore_index).sum())
        cm.update(logits.argmax(1).cpu().numpy(), y.cpu().numpy())
    matrix = np.asarray(cm.matrix, dtype=np.int64)
    if dist_info is not None and dist_info.distributed:
        t = all_reduce_sum(torch.from_numpy(matrix.copy()), dist_info)
        matrix = t.numpy()
        ln = all_reduce_sum(torch.tensor([loss_sum, float(n)], dtype=torch.float64), dist_info)
        loss_sum, n = float(ln[0]), int(ln[1])
    metrics = compute_metrics(matrix, class_names)
    metrics["loss"] = loss_sum / max(n, 1)
    return metrics


def chip_scene_defs(folder: Path, val_fraction: float, seed: int) -> list[SceneDef]:
    """Scenes for a chip folder written by ``rs-vit tile``: ``images/*.tif`` with ``masks/*.tif``
    of the same name; a seeded ``val_fraction`` of the chips is validation (split by chip)."""
    images = sorted((folder / "images").glob("*.tif"))
    if not images:
        raise ConfigError(f"data.chips {folder}: has no images/*.tif; write one with `rs-vit tile`.")
    missing = [p.name for p in images if not (folder / "masks" / p.name).is_file()]
    if missing:
        raise ConfigError(f"data.chips {folder}: masks/ lacks {missing[:3]} (one mask per image, same name).")
    n_val = max(1, int(round(val_fraction * len(images)))) if len(images) > 1 else 0
    val = set(np.random.default_rng(seed).permutation(len(images))[:n_val].tolist())
    return [SceneDef(image=p, labels=folder / "masks" / p.name, split="val" if i in val else "train")
            for i, p in enumerate(images)]


_NOTED = {"tensorboard": False}  # notes said once per process (a compare grid trains many runs)


class _Logger:
    """metrics.csv (+ TensorBoard when installed and asked for)."""

    def __init__(self, run_dir: Path, fields: list[str], tensorboard: bool, append: bool,
                 log: Callable[[str], None] = print) -> None:
        self.path, self.fields = run_dir / "metrics.csv", fields
        if not append or not self.path.exists():
            with open(self.path, "w", newline="") as fh:
                csv.DictWriter(fh, fieldnames=fields).writeheader()
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:  # tensorboard is optional: said once per process, not silently
                self.tb = None
                if not _NOTED["tensorboard"]:
                    _NOTED["tensorboard"] = True
                    log("TensorBoard logging is off: the tensorboard package is not installed (pip install "
                        "tensorboard, or set train.tensorboard: false); metrics.csv has every number.")

    def write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.fields).writerow(row)
        if self.tb is not None:
            for k, v in row.items():
                if k != "epoch" and v is not None:
                    try:
                        self.tb.add_scalar(k, float(v), int(row["epoch"]))
                    except (TypeError, ValueError):
                        pass
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def load_training_scenes(config: RunConfig) -> tuple[list[LabeledScene], list[str]]:
    """The labelled scenes of a run (and chip folders), split as training splits them, and their bands.

    Raises:
        ConfigError: no scene, or no training or no validation area.
    """
    data, tcfg = config.data, config.train
    defs = list(data.scenes)
    if data.chips is not None:
        defs += chip_scene_defs(Path(data.chips), data.val_fraction, tcfg.seed)
    if not defs:
        raise ConfigError("data.scenes is empty; give at least one scene with labels (--image/--labels) "
                          "or a chip folder (--chips).")
    scenes: list[LabeledScene] = []
    bands: list[str] | None = None
    for sd in defs:
        s = load_scene(sd, data, bands, tile=tcfg.tile_size, seed=tcfg.seed)
        bands = bands or s.info.band_names
        scenes.append(s)
    assert bands is not None
    if not any(s.split.area(TRAIN) for s in scenes):
        raise ConfigError("No scene has a training area; set split: train on a scene or lower val_fraction.")
    if not any(s.split.area(VAL) for s in scenes):
        raise ConfigError("No scene has a validation area; set split: val on a scene or val_fraction > 0.")
    return scenes, bands


def _init_from(model: nn.Module, path: Path, bands: list[str], num_classes: int, name: str) -> str:
    """Load an rs-vit checkpoint's weights into ``model``; bands are matched by name (a checkpoint
    trained on other bands is adapted with :func:`rs_vit.models.foreign.adapt_model`)."""
    from rs_vit.models.checkpoint import load_model
    from rs_vit.models.mim import is_encoder_checkpoint, load_encoder

    if is_encoder_checkpoint(path):  # written by `rs-vit pretrain`: encoder tensors, adapted by name
        return f" ({load_encoder(model, path, bands, band_init='zero')})"
    src, spec = load_model(path)
    if spec.name != name:
        raise CheckpointError(f"--init-from {path}: is a {spec.name} checkpoint but the run trains {name}; "
                              f"set --model {spec.name}.")
    if spec.num_classes != num_classes:
        raise CheckpointError(f"--init-from {path}: has {spec.num_classes} classes, the run {num_classes}; "
                              "declare the same classes.")
    note = ""
    if list(spec.bands) != list(bands):
        from rs_vit.models.foreign import adapt_model

        src, spec, report = adapt_model(src, spec, bands, band_init="zero")
        note = f" (bands adapted by name: {report.summary()})"
    state = src.state_dict()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"--init-from {path}: weights do not fit the model "
                              f"({str(exc).splitlines()[0]}); use the same model options.") from None
    return f": loaded {len(state)}/{len(state)} tensors{note}"


def _weights_normalization(config: RunConfig, bands: list[str], mean: np.ndarray, std: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, Any, dict[str, Any], dict[str, Any]]:
    """The catalogue entry the run starts from (if any), the model options it needs, and the
    normalisation: the entry's own scaling and statistics by default, the data's on request."""
    from rs_vit.models.catalogue import check_model, entry_for_run, normalization

    mcfg = config.model
    wentry = entry_for_run(mcfg.name, mcfg.pretrained, mcfg.weights_source)
    if wentry is None:
        if mcfg.normalize == "weights":
            raise ConfigError("model.normalize: weights needs catalogue weights (model.pretrained or "
                              "model.weights_source naming an entry of `rs-vit weights`).")
        return mean, std, None, dict(mcfg.kwargs), {"source": "data"}
    kwargs = check_model(wentry, mcfg.name, mcfg.kwargs)
    if mcfg.normalize == "data":
        return mean, std, wentry, kwargs, {"source": "data", "weights": wentry.name}
    m, s, record = normalization(wentry, bands, mean, std)
    if mcfg.normalize == "weights" and record["source"] == "data":
        raise ConfigError(f"model.normalize: weights, but {record['why']}; use normalize: auto or data.")
    return np.asarray(m, dtype=np.float64), np.asarray(s, dtype=np.float64), wentry, kwargs, record


def train(config: RunConfig, *, log: Callable[[str], None] = print, progress: bool = True,
          resume_dir: str | Path | None = None) -> TrainResult:
    """Train a model as configured and write the run directory.

    The run directory holds ``config.yaml`` (the resolved config), ``metrics.csv`` (one row per
    epoch), the checkpoints ``best/`` (highest validation mIoU) and ``last/`` (with
    ``train_state.pt`` for resuming), and ``curves.png`` / ``val_samples.png``.

    Args:
        config: the run's configuration.
        log: receives one line per event (epoch summaries, set-up).
        progress: show a rich progress bar per epoch.
        resume_dir: continue this run from its ``last/`` checkpoint (see :func:`resume`).
    """
    data, mcfg, tcfg, dcfg = config.data, config.model, config.train, config.distill
    if len(data.classes) < 2:
        raise ConfigError("data.classes must declare at least two classes (e.g. --classes classes.yaml).")
    entry = get_entry(mcfg.name)
    check_tile_size(mcfg.name, tcfg.tile_size)
    seed_everything(tcfg.seed)
    if tcfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    device = resolve_device(tcfg.device)
    dist_info = init_distributed(device.type)
    if dist_info.distributed and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
    if tcfg.batch_size % dist_info.world:
        raise ConfigError(f"train.batch_size {tcfg.batch_size} is not divisible by the {dist_info.world} "
                          "processes; use a multiple of the world size.")
    main = dist_info.is_main
    dtype = resolve_precision(tcfg.precision, device)
    run_dir = Path(resume_dir) if resume_dir else Path(tcfg.out_dir)
    if main and not resume_dir:
        check_run_dir(run_dir, tcfg.overwrite)  # fail before any work; create only once data are valid

    # -- data ----------------------------------------------------------------------------------
    scenes, bands = load_training_scenes(config)
    mean, std = training_stats(scenes, data.stats_samples, tcfg.seed)
    stats_note = ""
    if tcfg.init_from:  # a pretrained encoder (`rs-vit pretrain`) brings its own normalisation
        from rs_vit.models.mim import encoder_stats

        mean, std, stats_note = encoder_stats(tcfg.init_from, bands, mean, std)
    mean, std, wentry, model_kwargs, normalization = _weights_normalization(config, bands, mean, std)
    if main and not resume_dir:
        prepare_run_dir(run_dir, tcfg.overwrite)
        atomic_write_text(run_dir / "config.yaml", dump_config(config))
    barrier(dist_info)
    class_names = [c.name for c in data.classes]
    K = len(class_names)
    if main:
        log(f"Bands: {', '.join(bands)} | classes: {', '.join(class_names)} | device: {device}"
            f" | precision: {precision_name(dtype)}" + (f" | {dist_info.world} processes" if dist_info.distributed else ""))
        pre = wentry.name if wentry is not None else mcfg.pretrained
        log("Model: " + mcfg.name + (f" (pretrained: {pre})" if pre else ""))
        if mcfg.band_init != "mean" and not (pre or mcfg.weights):
            why = ("with train.init_from, bands new to that checkpoint start at zero (its outputs stay the same)"
                   if tcfg.init_from else "this model starts from scratch (set model.pretrained or model.weights, "
                   "or drop band_init)")
            log(f"Warning: model.band_init {mcfg.band_init!r} has no effect: it sets how bands without a "
                f"pretrained counterpart start, and {why}.")
    accum = tcfg.grad_accum
    train_ds = RandomWindows(scenes, tcfg.tile_size, tcfg.steps_per_epoch * tcfg.batch_size * accum, mean, std,
                             data.ignore_index, seed=tcfg.seed, augment=Augment(data.augment, data.ignore_index),
                             max_invalid=data.max_invalid, class_balanced=data.class_balanced)
    val_ds = GridWindows(scenes, tcfg.tile_size, mean, std, data.ignore_index, overlap=tcfg.val_overlap)
    per_rank = tcfg.batch_size // dist_info.world
    r, w = dist_info.rank, dist_info.world
    train_dl = DataLoader(train_ds, batch_size=per_rank, sampler=list(range(r, len(train_ds), w)),
                          num_workers=tcfg.num_workers, drop_last=True)  # workers re-created per epoch: they see set_epoch
    val_dl = DataLoader(val_ds, batch_size=per_rank, sampler=list(range(r, len(val_ds), w)),
                        num_workers=tcfg.num_workers)

    # -- model ---------------------------------------------------------------------------------
    model = create_model(
        mcfg.name, in_channels=len(bands), num_classes=K,
        pretrained=wentry.name if wentry is not None else mcfg.pretrained,
        weights=str(mcfg.weights) if mcfg.weights else None, band_names=bands,
        band_init=mcfg.band_init, drop_path_rate=mcfg.drop_path_rate, **model_kwargs,
    )
    if main:
        for line in getattr(model, "rs_vit_init_lines", None) or []:
            log(line)  # one line per weights source, then how the first layer was adapted
    if main and wentry is not None:
        if normalization["source"] == "data":
            log("Normalisation: training-data statistics for every band"
                + (f" ({normalization['why']})" if normalization.get("why") else " (model.normalize: data)"))
        else:
            log(f"Normalisation: {normalization['source']} ({normalization['scaling']}) for "
                f"{', '.join(normalization['from_weights'])}"
                + (f"; training-data statistics for {', '.join(normalization['from_data'])}"
                   if normalization.get("from_data") else ""))
    if tcfg.init_from and not resume_dir:
        note = _init_from(model, Path(tcfg.init_from), bands, K, mcfg.name)
        if main:
            log(f"Initialised from {tcfg.init_from}{note}" + (f"; {stats_note}" if stats_note else ""))
    if main and not resume_dir and not tcfg.init_from and not getattr(model, "rs_vit_init_lines", None):
        log("Trained from scratch: no pretrained weights, no weights file, no --init-from.")
    model = model.to(device)
    if tcfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    spec = ModelSpec(
        name=mcfg.name, in_channels=len(bands), num_classes=K, bands=list(bands),
        mean=[float(v) for v in mean], std=[float(v) for v in std],
        classes=[c.model_dump(mode="json") for c in data.classes], tile_size=tcfg.tile_size,
        nodata=scenes[0].info.nodata, ignore_index=data.ignore_index, model_kwargs=model_kwargs,
        drop_path_rate=mcfg.drop_path_rate, extra={"family": entry.family},
        value_range=training_value_range(scenes, seed=tcfg.seed), normalization=normalization,
    )
    teacher = None
    if dcfg.teacher is not None:
        from rs_vit.train.distill import Teacher

        teacher = Teacher(dcfg.teacher, student_bands=bands, student_mean=mean, student_std=std,
                          num_classes=K, device=device)
        if main:
            log(f"Distilling from {dcfg.teacher} ({dcfg.mode}, alpha {dcfg.alpha}, T {dcfg.temperature})")
    from rs_vit.train.distill import check_distill_setup

    check_distill_setup(model, teacher)  # a DeiT distillation-token head needs a teacher
    net: nn.Module = model
    if dist_info.distributed:
        if device.type == "cuda":  # BatchNorm statistics over the global batch (CPU/gloo: per rank)
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = build_optimizer(model, tcfg)
    total_steps = tcfg.epochs * tcfg.steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_lambda(min(tcfg.warmup_steps, total_steps // 2), total_steps, tcfg.min_lr_ratio))
    scaler = torch.amp.GradScaler(device.type, enabled=(dtype == torch.float16))
    crit = SegLoss(tcfg.loss, ignore_index=data.ignore_index, class_weights=tcfg.class_weights).to(device)
    if main and crit.unweighted:
        log(f"Note: train.class_weights do not reach the {', '.join(crit.unweighted)} term of the loss "
            "(smp's Lovász loss has no class weights); they weight the other terms.")

    history: list[dict[str, Any]] = []
    best_miou, best_epoch, stale, start = -1.0, 0, 0, 1
    if resume_dir:
        st = load_train_state(run_dir)
        from safetensors.torch import load_file

        from rs_vit.models.checkpoint import WEIGHTS_FILE, _load_state

        _load_state(model, load_file(str(run_dir / "last" / WEIGHTS_FILE)), str(run_dir / "last"), mcfg.name)
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        scaler.load_state_dict(st["scaler"])
        set_rng_state(st["rng"])
        history, best_miou, best_epoch, stale = st["history"], st["best_miou"], st["best_epoch"], st["stale_epochs"]
        start = int(st["epoch"]) + 1
        if main:
            log(f"Resuming {run_dir} after epoch {st['epoch']} (best mIoU {best_miou:.4f} at epoch {best_epoch})")
    fields = ["epoch", "train_loss", "val_loss", "val_miou", "val_overall_accuracy", "val_mean_f1", "lr",
              "seconds", "windows_per_s", *[f"iou_{n}" for n in class_names]]
    logger = _Logger(run_dir, fields, tcfg.tensorboard, append=bool(resume_dir), log=log) if main else None
    extra_files = {"config.yaml": dump_config(config)}

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    stopped_early = False
    for epoch in range(start, tcfg.epochs + 1):
        if stale and tcfg.early_stopping and stale >= tcfg.early_stopping:
            stopped_early = True
            break
        net.train()
        train_ds.set_epoch(epoch)
        t0 = time.perf_counter()
        loss_sum, seen = 0.0, 0
        with Progress(TextColumn(f"epoch {epoch}/{tcfg.epochs}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TextColumn("loss {task.fields[loss]:.4f}"),
                      TextColumn("{task.fields[speed]:.1f} win/s"), TimeRemainingColumn(),
                      disable=not (progress and main), transient=True) as bar:
            task = bar.add_task("train", total=tcfg.steps_per_epoch, loss=float("nan"), speed=0.0)
            for i, (x, y) in enumerate(train_dl):
                x, y = x.to(device), y.to(device)
                if tcfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                last_micro = (i + 1) % accum == 0
                sync = net.no_sync() if (dist_info.distributed and not last_micro) else nullcontext()
                with sync:
                    with autocast(device, dtype):
                        logits = net(x)
                    loss = crit(logits, y)
                    if teacher is not None:
                        from rs_vit.train.distill import distill_loss, student_distill_logits

                        with autocast(device, dtype):
                            t_logits = teacher(x)
                        kd = distill_loss(student_distill_logits(model, logits), t_logits, y != data.ignore_index,
                                          mode=dcfg.mode, temperature=dcfg.temperature)
                        loss = (1 - dcfg.alpha) * loss + dcfg.alpha * kd
                    if not torch.isfinite(loss):
                        raise RuntimeError(f"Training loss became {loss.item()} at epoch {epoch}, batch {i + 1}; "
                                           "lower --lr or use --precision fp32.")
                    scaler.scale(loss / accum).backward()
                loss_sum += float(loss.detach())
                seen += x.shape[0] * dist_info.world
                if last_micro:
                    optimizer_step(opt, sched, scaler, model.parameters(), tcfg.grad_clip)
                    bar.update(task, advance=1, loss=loss_sum / (i + 1),
                               speed=seen / max(time.perf_counter() - t0, 1e-9))
        n_batches = max(1, len(train_dl))
        train_loss = float(all_reduce_sum(torch.tensor([loss_sum / n_batches], dtype=torch.float64),
                                          dist_info)[0]) / dist_info.world
        train_seconds = time.perf_counter() - t0
        # the unwrapped model: ranks may hold different numbers of validation batches, and DDP's
        # forward would wait for the other ranks (buffer broadcast) on each of them
        m = validate(model, val_dl, K, data.ignore_index, device, dtype, class_names, tcfg.channels_last, dist_info)
        miou = m["miou"] if m["miou"] is not None else 0.0
        row = {
            "epoch": epoch, "train_loss": round(train_loss, 5), "val_loss": round(m["loss"], 5),
            "val_miou": _r(m["miou"]), "val_overall_accuracy": _r(m["overall_accuracy"]),
            "val_mean_f1": _r(m["mean_f1"]), "lr": f"{sched.get_last_lr()[0]:.3g}",
            "seconds": round(time.perf_counter() - t0, 1), "windows_per_s": round(seen / max(train_seconds, 1e-9), 2),
            **{f"iou_{pc['name']}": _r(pc["iou"]) for pc in m["per_class"]},
        }
        history.append(row)
        improved = miou > best_miou
        if improved:
            best_miou, best_epoch, stale = miou, epoch, 0
        else:
            stale += 1
        if main:
            assert logger is not None
            logger.write(row)
            spec.extra.update({"epoch": epoch, "val_miou": miou})
            if improved:
                save_checkpoint(run_dir / "best", model, spec, extra_files=extra_files)
            state = dump_train_state(optimizer=opt, scheduler=sched, scaler=scaler, epoch=epoch,
                                     best_miou=best_miou, best_epoch=best_epoch, history=history,
                                     stale_epochs=stale)
            save_checkpoint(run_dir / "last", model, spec, extra_files={**extra_files, STATE_FILE: state})
            per_class = " ".join(f"{pc['name']}={_r(pc['iou'])}" for pc in m["per_class"])
            log(f"epoch {epoch}/{tcfg.epochs}  train loss {train_loss:.4f}  val loss {m['loss']:.4f}  "
                f"val mIoU {miou:.4f}  ({per_class})  {row['windows_per_s']} win/s  {row['seconds']}s")
        barrier(dist_info)
    if stopped_early and main:
        log(f"Early stopping: no better validation mIoU for {tcfg.early_stopping} epochs.")
    if main:
        assert logger is not None
        logger.close()
        if tcfg.plots and history:
            _write_plots(model, val_ds, history, run_dir, bands, data, device, dtype, tcfg.channels_last)
    barrier(dist_info)
    cleanup(dist_info)
    return TrainResult(run_dir, run_dir / "best", run_dir / "last", best_miou, best_epoch, history, stopped_early)


def resume(run_dir: str | Path, *, log: Callable[[str], None] = print, progress: bool = True,
           epochs: int | None = None) -> TrainResult:
    """Continue a stopped or crashed run from ``RUN_DIR/last`` with the run's own config.

    Args:
        run_dir: the run directory (holding ``config.yaml`` and ``last/train_state.pt``).
        log: receives progress lines.
        progress: show progress bars.
        epochs: a new total number of epochs (to extend a finished run); the schedule is the
            original one, so only runs extended this way differ from an uninterrupted run.
    """
    rd = Path(run_dir)
    if not (rd / "config.yaml").is_file():
        raise CheckpointError(f"{rd}: has no config.yaml; give the directory of an rs-vit training run.")
    load_train_state(rd)  # refuse early (before loading data) when there is nothing to resume
    config = load_config(rd / "config.yaml")
    if epochs is not None:
        config.train.epochs = epochs
    return train(config, log=log, progress=progress, resume_dir=rd)


@torch.no_grad()
def _write_plots(model: nn.Module, val_ds: GridWindows, history: list[dict[str, Any]], run_dir: Path,
                 bands: list[str], data: Any, device: torch.device, dtype: torch.dtype | None,
                 channels_last: bool, n: int = 4) -> None:
    from rs_vit.train.plots import plot_curves, plot_samples

    plot_curves(history, run_dir / "curves.png")
    if not len(val_ds):
        return
    # show the windows with the most labelled pixels outside the most common class (the interesting ones)
    ys = [(i, val_ds[i][1].numpy()) for i in np.linspace(0, len(val_ds) - 1, min(len(val_ds), 64)).astype(int)]
    counts = np.bincount(np.concatenate([y[y != data.ignore_index] for _, y in ys] + [np.zeros(0, np.int64)]),
                         minlength=len(data.classes))
    common = int(counts.argmax()) if counts.size else 0
    score = [(int(((y != data.ignore_index) & (y != common)).sum()), int(i)) for i, y in ys]
    pick = sorted({i for _, i in sorted(score, reverse=True)[:n]})
    model.eval()
    imgs, labs, preds = [], [], []
    for i in pick:
        x, y = val_ds[i]
        xb = x[None].to(device)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast(device, dtype):
            p = model(xb).argmax(1)[0].cpu().numpy()
        imgs.append(x.numpy())
        labs.append(y.numpy())
        preds.append(np.where(y.numpy() == data.ignore_index, data.ignore_index, p))
    colors = [tuple(c.color) if c.color else None for c in data.classes]
    plot_samples(imgs, labs, preds, bands, colors, data.ignore_index, run_dir / "val_samples.png")


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)
