"""Self-supervised pretraining on the user's own unlabelled scenes (``rs-vit pretrain``).

Masked image modelling (:mod:`rs_vit.models.mim`: MAE for plain-ViT encoders, SimMIM for
hierarchical and CNN encoders) on random windows of the scenes, with the same plumbing as
:func:`rs_vit.train.loop.train`: scenes, band names, nodata-aware normalisation statistics,
augmentations, bf16 autocast, channels-last, DDP under torchrun, a metrics CSV, progress bars,
``resume`` and safe checkpoints. The run directory holds:

- ``encoder/``: the product, an rs-vit checkpoint folder of the encoder's tensors (named as in the
  segmentation model) with the bands, normalisation statistics and how it was pretrained
  (``rs_vit.json``: ``extra.kind = "encoder"``). ``rs-vit train --init-from RUN/encoder`` starts
  from it (band names matched, its normalisation used); ``weights: RUN/encoder`` works too.
- ``last/``: the whole MIM model and ``train_state.pt`` for ``--resume``.
- ``config.yaml``, ``metrics.csv`` and ``reconstructions.png`` (masked inputs and their
  reconstructions, rewritten every epoch).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rasterio.windows import Window
from torch import nn
from torch.utils.data import DataLoader

from rs_vit.config import PretrainRunConfig, SceneDef, dump_config, load_config
from rs_vit.data.augment import Augment
from rs_vit.data.datasets import RandomWindows
from rs_vit.data.scenes import LabeledScene, load_scene
from rs_vit.data.split import TRAIN, whole_scene
from rs_vit.data.stats import training_stats
from rs_vit.device import autocast, precision_name, resolve_device, resolve_precision
from rs_vit.errors import CheckpointError, ConfigError
from rs_vit.io.atomic import atomic_write_text
from rs_vit.io.bands import match_bands
from rs_vit.io.raster import SceneInfo, scene_info
from rs_vit.models.checkpoint import WEIGHTS_FILE, ModelSpec, save_checkpoint
from rs_vit.models.mim import ENCODER_KIND, MIMModel, build_mim
from rs_vit.models.registry import check_tile_size, create_model, get_entry
from rs_vit.train.ddp import all_reduce_sum, barrier, cleanup, init_distributed
from rs_vit.train.loop import check_run_dir, prepare_run_dir, seed_everything
from rs_vit.train.optim import build_optimizer, lr_lambda, optimizer_step
from rs_vit.train.resume import STATE_FILE, dump_train_state, load_train_state, set_rng_state

MIM_KIND = "mim"
_FIELDS = ["epoch", "train_loss", "lr", "seconds", "windows_per_s"]


@dataclass
class PretrainResult:
    """Where a pretraining run wrote its outputs."""

    run_dir: Path
    encoder_checkpoint: Path
    last_checkpoint: Path
    method: str
    history: list[dict[str, Any]] = field(default_factory=list)


class UnlabeledScene(LabeledScene):
    """A scene read for self-supervised learning: its labels are ``0`` on every valid pixel (and
    ``ignore_index`` on nodata, as for any scene), whatever label file it may have."""

    def _read_labels(self, win: Window | None) -> np.ndarray:
        h, w = (self.height, self.width) if win is None else (int(win.height), int(win.width))
        return np.zeros((h, w), dtype=np.int64)


def _scene_defs(config: PretrainRunConfig) -> list[SceneDef]:
    data = config.data
    defs = list(data.scenes)
    if data.chips is not None:  # chips: every image, masks not needed
        images = sorted((Path(data.chips) / "images").glob("*.tif"))
        if not images:
            raise ConfigError(f"data.chips {data.chips}: has no images/*.tif; write one with `rs-vit tile`.")
        defs += [SceneDef(image=p) for p in images]
    if not defs:
        raise ConfigError("data.scenes is empty; give at least one scene to pretrain on (--image).")
    return defs


def load_unlabeled_scenes(config: PretrainRunConfig) -> tuple[list[UnlabeledScene], list[str]]:
    """Open the scenes (bands matched by name to the first scene's) for pretraining.

    With ``pretrain.area: train``, a labelled scene contributes only the training area of the
    split ``rs-vit train`` makes with the same data section and seed; unlabelled scenes are used
    whole either way.
    """
    data, tcfg, area = config.data, config.train, config.pretrain.area
    scenes: list[UnlabeledScene] = []
    bands: list[str] | None = None
    for sd in _scene_defs(config):
        info = scene_info(sd.image, bands=data.bands, sensor=data.sensor)
        if bands:
            indexes = match_bands(info.band_names, bands, scene_label=f"Scene {info.path.name}")
        else:  # every input band (alpha/mask bands excluded where the reader marks them)
            indexes = list(getattr(info, "input_indexes", None) or range(info.count))
        sel = SceneInfo(**{**info.__dict__, "band_names": [info.band_names[i] for i in indexes]})
        split = whole_scene(info.height, info.width, TRAIN)
        if area == "train" and sd.labels is not None:
            if not data.classes:
                raise ConfigError("pretrain.area train reads the split of the labelled scenes as `rs-vit train` "
                                  "does: declare data.classes (--classes) or use area all.")
            split = load_scene(sd, data, bands, tile=tcfg.tile_size, seed=tcfg.seed).split
        scene = UnlabeledScene(sel, indexes, split, Path(sd.image), [0], data.ignore_index)
        itemsize = np.dtype(info.dtype).itemsize
        if len(indexes) * info.height * info.width * itemsize / 2**20 <= data.cache_mb:
            scene.image, scene.labels, scene.invalid = scene.read(0, 0, info.height, info.width)
        bands = bands or sel.band_names
        scenes.append(scene)
    assert bands is not None
    if not any(s.split.area(TRAIN) for s in scenes):
        raise ConfigError("No scene has pixels to pretrain on; use pretrain.area all.")
    return scenes, bands


def _write_row(path: Path, row: dict[str, Any], header: bool) -> None:
    with open(path, "a" if not header else "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=_FIELDS)
        if header:
            w.writeheader()
        if row:
            w.writerow(row)


def pretrain(config: PretrainRunConfig, *, log: Callable[[str], None] = print, progress: bool = True,
             resume_dir: str | Path | None = None) -> PretrainResult:
    """Pretrain a model's encoder with masked image modelling on unlabelled scenes.

    Args:
        config: data (scenes; labels are not used), model (name, optional ``pretrained``/``weights``
            to continue from), train (the loop: epochs, steps, batch, tile, lr, precision, out_dir…)
            and pretrain (method, mask ratio…) sections.
        log: receives one line per event.
        progress: show a progress bar per epoch.
        resume_dir: continue this run from its ``last/`` checkpoint (see :func:`resume_pretrain`).
    """
    data, mcfg, tcfg, pcfg = config.data, config.model, config.train, config.pretrain
    if tcfg.init_from is not None:
        raise ConfigError("train.init_from is for `rs-vit train`; to continue pretraining from weights or a "
                          "checkpoint use model.weights (--weights PATH).")
    if config.distill.teacher is not None:
        raise ConfigError("distill.teacher is for `rs-vit train`; pretraining learns from the images alone: "
                          "remove the distill section.")
    entry = get_entry(mcfg.name)
    check_tile_size(mcfg.name, tcfg.tile_size)
    seed_everything(tcfg.seed)
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
        check_run_dir(run_dir, tcfg.overwrite)

    scenes, bands = load_unlabeled_scenes(config)
    mean, std = training_stats(scenes, data.stats_samples, tcfg.seed, source="pretraining scenes")
    if main and not resume_dir:
        prepare_run_dir(run_dir, tcfg.overwrite)
        atomic_write_text(run_dir / "config.yaml", dump_config(config))
    barrier(dist_info)

    model = create_model(mcfg.name, in_channels=len(bands), num_classes=1, pretrained=mcfg.pretrained,
                         weights=str(mcfg.weights) if mcfg.weights else None, band_names=bands,
                         band_init=mcfg.band_init, drop_path_rate=mcfg.drop_path_rate, **mcfg.kwargs)
    init_note = str(getattr(model, "rs_vit_init", "") or "")
    mim = build_mim(model, entry.family, len(bands), tcfg.tile_size, method=pcfg.method,
                    mask_ratio=pcfg.mask_ratio, mask_patch=pcfg.mask_patch, loss=pcfg.loss,
                    norm_pix_loss=pcfg.norm_pix_loss, decoder_dim=pcfg.decoder_dim,
                    decoder_depth=pcfg.decoder_depth)
    del model  # its decoder is not trained; the wrapper holds the encoder modules
    plan = mim.plan
    n_pix = sum(s.split.area(TRAIN) for s in scenes)
    start_from = (f"weights {mcfg.weights}" if mcfg.weights else f"pretrained {mcfg.pretrained}"
                  if mcfg.pretrained else "random initialisation")
    if main:
        log(f"Bands: {', '.join(bands)} | {len(scenes)} scene(s), {n_pix:,} pixels | device: {device}"
            f" | precision: {precision_name(dtype)}" + (f" | {dist_info.world} processes" if dist_info.distributed else ""))
        log(f"Pretraining {mcfg.name} ({entry.family}) from {start_from}: {plan.method.upper()}, masking "
            f"{plan.mask_ratio:.0%} of {plan.mask_patch}-px squares ({plan.masking}), {plan.loss} loss"
            f"{' on per-patch normalised targets' if plan.norm_pix_loss else ''}" + (f"; {init_note}" if init_note else ""))

    accum = tcfg.grad_accum
    ds = RandomWindows(scenes, tcfg.tile_size, tcfg.steps_per_epoch * tcfg.batch_size * accum, mean, std,
                       data.ignore_index, seed=tcfg.seed, augment=Augment(data.augment, data.ignore_index),
                       max_invalid=data.max_invalid)
    per_rank = tcfg.batch_size // dist_info.world
    r, w = dist_info.rank, dist_info.world
    dl = DataLoader(ds, batch_size=per_rank, sampler=list(range(r, len(ds), w)),
                    num_workers=tcfg.num_workers, drop_last=True)

    mim = mim.to(device)
    if tcfg.channels_last:
        mim = mim.to(memory_format=torch.channels_last)
    net: nn.Module = mim
    if dist_info.distributed:
        if device.type == "cuda":
            mim = nn.SyncBatchNorm.convert_sync_batchnorm(mim)
        net = nn.parallel.DistributedDataParallel(
            mim, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True)  # e.g. a timm head inside the encoder the MIM path never uses
    opt = build_optimizer(mim, tcfg)
    total = tcfg.epochs * tcfg.steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(min(tcfg.warmup_steps, total // 2), total,
                                                             tcfg.min_lr_ratio))
    scaler = torch.amp.GradScaler(device.type, enabled=(dtype == torch.float16))

    spec = ModelSpec(
        name=mcfg.name, in_channels=len(bands), num_classes=1, bands=list(bands),
        mean=[float(v) for v in mean], std=[float(v) for v in std],
        classes=[{"id": 0, "name": "none (pretrained encoder)", "color": None}], tile_size=tcfg.tile_size,
        nodata=scenes[0].info.nodata, ignore_index=data.ignore_index, model_kwargs=dict(mcfg.kwargs),
        drop_path_rate=mcfg.drop_path_rate,
        extra={"kind": ENCODER_KIND, "family": entry.family, "method": plan.method, "mim": plan.as_dict(),
               "encoder_modules": list(mim.part_names), "encoder_tensors": len(mim.encoder_state_dict()),
               "pixels": n_pix, "init": init_note or start_from},
    )
    history: list[dict[str, Any]] = []
    start = 1
    if resume_dir:
        st = load_train_state(run_dir)
        from safetensors.torch import load_file

        state = load_file(str(run_dir / "last" / WEIGHTS_FILE))
        try:
            mim.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{run_dir}/last: does not fit this pretraining model "
                                  f"({str(exc).splitlines()[0]}); the run directory is corrupt.") from None
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        scaler.load_state_dict(st["scaler"])
        set_rng_state(st["rng"])
        history, start = st["history"], int(st["epoch"]) + 1
        if main:
            log(f"Resuming {run_dir} after epoch {st['epoch']}")
    metrics = run_dir / "metrics.csv"
    if main and not (resume_dir and metrics.exists()):
        _write_row(metrics, {}, header=True)
    extra_files = {"config.yaml": dump_config(config)}
    samples = _sample_windows(scenes, tcfg.tile_size, mean, std, data.ignore_index, tcfg.seed, pcfg.samples)

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    for epoch in range(start, tcfg.epochs + 1):
        net.train()
        ds.set_epoch(epoch)
        # masks from their own generator, seeded per (seed, epoch, rank): ranks draw different masks
        # and a resumed run draws the same ones as an uninterrupted run
        mask_gen = torch.Generator().manual_seed(tcfg.seed * 1_000_003 + epoch * 1_009 + dist_info.rank)
        t0 = time.perf_counter()
        loss_sum, seen = 0.0, 0
        with Progress(TextColumn(f"pretrain {epoch}/{tcfg.epochs}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TextColumn("loss {task.fields[loss]:.4f}"),
                      TextColumn("{task.fields[speed]:.1f} win/s"), TimeRemainingColumn(),
                      disable=not (progress and main), transient=True) as bar:
            task = bar.add_task("pretrain", total=tcfg.steps_per_epoch, loss=float("nan"), speed=0.0)
            for i, (x, y) in enumerate(dl):
                x, valid = x.to(device), (y != data.ignore_index).to(device)
                if tcfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                last_micro = (i + 1) % accum == 0
                sync = net.no_sync() if (dist_info.distributed and not last_micro) else nullcontext()
                with sync:
                    with autocast(device, dtype):
                        loss = net(x, valid, generator=mask_gen).loss
                    if not torch.isfinite(loss):
                        raise RuntimeError(f"Pretraining loss became {loss.item()} at epoch {epoch}, batch {i + 1}; "
                                           "lower --lr or use --precision fp32.")
                    scaler.scale(loss / accum).backward()
                loss_sum += float(loss.detach())
                seen += x.shape[0] * dist_info.world
                if last_micro:
                    optimizer_step(opt, sched, scaler, mim.parameters(), tcfg.grad_clip)
                    bar.update(task, advance=1, loss=loss_sum / (i + 1),
                               speed=seen / max(time.perf_counter() - t0, 1e-9))
        n_batches = max(1, len(dl))
        train_loss = float(all_reduce_sum(torch.tensor([loss_sum / n_batches], dtype=torch.float64),
                                          dist_info)[0]) / dist_info.world
        secs = time.perf_counter() - t0
        row = {"epoch": epoch, "train_loss": round(train_loss, 5), "lr": f"{sched.get_last_lr()[0]:.3g}",
               "seconds": round(secs, 1), "windows_per_s": round(seen / max(secs, 1e-9), 2)}
        history.append(row)
        if main:
            _write_row(metrics, row, header=False)
            spec.extra.update({"epoch": epoch, "train_loss": row["train_loss"]})
            save_checkpoint(run_dir / "encoder", mim.encoder_module(), spec, extra_files=extra_files)
            state = dump_train_state(optimizer=opt, scheduler=sched, scaler=scaler, epoch=epoch, best_miou=0.0,
                                     best_epoch=epoch, history=history, stale_epochs=0)
            last_spec = ModelSpec(**{**spec.__dict__, "extra": {**spec.extra, "kind": MIM_KIND}})
            save_checkpoint(run_dir / "last", mim, last_spec, extra_files={**extra_files, STATE_FILE: state})
            if tcfg.plots and samples is not None:
                _plot_reconstructions(mim, samples, bands, run_dir / "reconstructions.png", device, dtype,
                                      tcfg.seed, f"{mcfg.name} {plan.method.upper()}, epoch {epoch}")
            log(f"epoch {epoch}/{tcfg.epochs}  reconstruction loss {train_loss:.4f}  "
                f"{row['windows_per_s']} win/s  {row['seconds']}s")
        barrier(dist_info)
    barrier(dist_info)
    cleanup(dist_info)
    return PretrainResult(run_dir, run_dir / "encoder", run_dir / "last", plan.method, history)


def resume_pretrain(run_dir: str | Path, *, log: Callable[[str], None] = print, progress: bool = True,
                    epochs: int | None = None) -> PretrainResult:
    """Continue a stopped pretraining run from ``RUN_DIR/last`` with its own config.

    Args:
        run_dir: the run directory (``config.yaml`` and ``last/train_state.pt``).
        log, progress: as for :func:`pretrain`.
        epochs: a new total number of epochs (to extend a finished run).
    """
    rd = Path(run_dir)
    if not (rd / "config.yaml").is_file():
        raise CheckpointError(f"{rd}: has no config.yaml; give the directory of an rs-vit pretraining run.")
    load_train_state(rd)
    config = load_config(rd / "config.yaml", schema=PretrainRunConfig)
    assert isinstance(config, PretrainRunConfig)
    if epochs is not None:
        config.train.epochs = epochs
    return pretrain(config, log=log, progress=progress, resume_dir=rd)


# -- plots ----------------------------------------------------------------------------------------

def _sample_windows(scenes: list[UnlabeledScene], tile: int, mean: np.ndarray, std: np.ndarray, ignore: int,
                    seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``n`` fixed windows (no augmentation) shown in every epoch's reconstruction plot."""
    if n <= 0:
        return None
    ds = RandomWindows(scenes, tile, n, mean, std, ignore, seed=seed + 7919, augment=None, max_invalid=0.5)
    xs, ys = zip(*(ds[i] for i in range(n)))
    return torch.stack(xs), torch.stack(ys) != ignore


@torch.no_grad()
def _plot_reconstructions(mim: MIMModel, samples: tuple[torch.Tensor, torch.Tensor], bands: list[str],
                          path: Path, device: torch.device, dtype: torch.dtype | None, seed: int, title: str) -> None:
    """A PNG with one row per window: original, masked input, reconstruction (false colour of three
    bands: red/green/blue by name when present, else the first three), fixed masks across epochs."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from rs_vit.io.atomic import atomic_path
    from rs_vit.models.mim import pixel_mask

    x, valid = samples
    was = mim.training
    mim.eval()
    gen = torch.Generator().manual_seed(seed)
    with autocast(device, dtype):
        out = mim(x.to(device), valid.to(device), generator=gen)
    mim.train(was)
    pix = pixel_mask(out.mask, mim.plan.mask_patch).cpu()
    n = x.shape[0]
    # with per-patch normalised targets the model predicts each patch's pattern, not its mean and
    # contrast: those are taken from the original to draw it (as MAE's own figures do), and said so
    rec_title = "reconstruction" + ("\n(patch mean/contrast from original)" if mim.plan.norm_pix_loss else "")
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
    for i in range(n):
        orig = x[i].float().numpy()
        rec = out.reconstruction[i].float().cpu().numpy()
        masked = np.where(pix[i].numpy() > 0, np.nan, orig)
        imgs = (_stretch_like(orig, orig, bands), _masked_rgb(masked, bands, orig), _stretch_like(rec, orig, bands))
        for j, (img, t) in enumerate(zip(imgs, ("original", f"masked ({mim.plan.mask_ratio:.0%})", rec_title))):
            axes[i, j].imshow(img, interpolation="nearest")
            axes[i, j].set_title(t)
            axes[i, j].axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)


def _rgb_index(bands: list[str]) -> list[int]:
    names = list(bands)
    if all(b in names for b in ("red", "green", "blue")):
        return [names.index(b) for b in ("red", "green", "blue")]
    return [0, 1, 2] if len(names) >= 3 else [0, 0, 0]


def _stretch_like(img: np.ndarray, ref: np.ndarray, bands: list[str]) -> np.ndarray:
    """False colour of ``img`` with the 2-98 % stretch of ``ref`` (so both look alike)."""
    idx = _rgb_index(bands)
    r = ref[idx].transpose(1, 2, 0)
    lo, hi = np.percentile(r, 2), np.percentile(r, 98)
    return np.clip((img[idx].transpose(1, 2, 0) - lo) / max(hi - lo, 1e-6), 0, 1)


def _masked_rgb(masked: np.ndarray, bands: list[str], ref: np.ndarray) -> np.ndarray:
    rgb = _stretch_like(np.nan_to_num(masked, nan=0.0), ref, bands)
    hole = np.isnan(masked[_rgb_index(bands)[0]])
    rgb[hole] = 0.5  # masked squares in grey
    return rgb
