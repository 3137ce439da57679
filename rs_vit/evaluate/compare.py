"""A small grid of experiments on one dataset: models × band adaptation × training-set size ×
overlap/blend, each trained with the same seed and budget, predicted, evaluated, tabulated.

The grid is one YAML file::

    base: run.yaml                  # a training config (rs-vit train --config), or an inline mapping
    seed: 0                         # optional: overrides base train.seed for every cell
    axes:
      model: [segformer_b0, unet_resnet18]     # model.name
      band_init: [mean]                        # model.band_init (matters with pretrained weights)
      pretrained: [null]                       # model.pretrained
      train_fraction: [0.25, 1.0]              # share of the training rows whose labels are used
      overlap: [0.0, 0.5]                      # prediction: window overlap (default: predict's)
      blend: [hann]                            # prediction: blend weights (default: predict's)
      train.lr: [0.0006]                       # any dotted config key is an axis too
    predict: {batch_size: 4, device: auto, precision: auto, tolerance: 2}
    baseline: random_forest         # optional: per-pixel baseline row(s) on the same pixels

``baseline`` adds rows of a per-pixel classifier (:mod:`rs_vit.baseline`) fit on the same
training crops and scored on the same held-out crops, once per ``train_fraction`` (and seed), so
the table shows at a glance whether a deep model earns its cost. It is a method name
(``random_forest``, ``gradient_boosting``), a list of them, or a mapping (or list of mappings)
with ``method`` and any of ``indices`` (e.g. ``[ndvi, ndwi]``), ``max_pixels``, ``n_estimators``,
``max_depth``, ``min_samples_leaf``, ``learning_rate``, ``n_jobs`` and ``seeds`` (default: the
grid's seed). Baseline rows have no overlap/blend (a per-pixel model needs no windows).

How the data are split (the same for every cell): each ``auto`` scene of the base config is cut
into a training part (its top ``1 - val_fraction`` rows) and a held-out part (the bottom rows),
written as GeoTIFF crops under ``<out>/data/``; a cell with ``train_fraction`` f trains on the top
f share of the training rows only. Every training run (one per combination of the training axes)
gets the same seed, epochs and steps; its *last* checkpoint (not the best one, which was
selected on the held-out part) predicts the held-out part with each overlap/blend setting, and
the prediction is evaluated against the held-out labels (mIoU, boundary F1, accuracy).

Outputs under ``out_dir``: ``train/<run>/`` (run directories), ``cells/<cell>/result.json`` and
``metrics.json`` and the predicted mask, ``results.csv``, ``results.md`` and the plots
``accuracy_vs_throughput.png``, ``accuracy_vs_train_size.png``, ``boundary_f1_by_model.png``.
A cell whose ``result.json`` exists is not run again, and a training run with a finished
``train_result.json`` is reused, so an interrupted grid resumes where it stopped.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from rs_vit.errors import ConfigError, suggest
from rs_vit.io.atomic import atomic_write_text

__all__ = ["Cell", "GridResult", "load_grid", "plan_grid", "run_grid"]

#: short axis names and the config key each sets (None: handled by compare itself).
AXES: dict[str, str | None] = {
    "model": "model.name",
    "band_init": "model.band_init",
    "pretrained": "model.pretrained",
    "train_fraction": None,
    "overlap": None,
    "blend": None,
}
PREDICT_AXES = ("overlap", "blend")
RUN_PREFIX = {"band_init": "init_", "pretrained": "pre_", "train_fraction": "frac"}
PREDICT_DEFAULTS: dict[str, Any] = {
    "batch_size": 4, "device": "auto", "precision": "auto", "tolerance": 2.0, "tile_size": None,
}
GRID_KEYS = ("base", "seed", "axes", "predict", "name", "baseline")
#: keys of a ``baseline:`` mapping (see the module docstring)
BASELINE_KEYS = ("method", "indices", "max_pixels", "n_estimators", "max_depth", "min_samples_leaf",
                 "learning_rate", "n_jobs", "seeds")
RESULT_FIELDS = [
    "cell", "run", "model", "band_init", "pretrained", "train_fraction", "train_pixels", "overlap",
    "blend", "seed", "epochs", "steps", "miou", "boundary_f1", "overall_accuracy", "fwiou",
    "mean_f1", "params_m", "train_s", "predict_s", "windows", "windows_per_s", "mpx_per_s",
]


@dataclass
class Cell:
    """One experiment: a training run (``run``) predicted with one overlap/blend setting."""

    id: str
    run: str
    values: dict[str, Any]  # axis -> value
    overrides: dict[str, Any]  # dotted config key -> value (training axes)
    train_fraction: float
    overlap: float
    blend: str
    baseline: dict[str, Any] | None = None  # a per-pixel baseline cell: its options (and seed)


@dataclass
class GridResult:
    """What :func:`run_grid` produced."""

    out_dir: Path
    rows: list[dict[str, Any]]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)


def _slug(value: Any) -> str:
    text = "none" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
    return re.sub(r"[^A-Za-z0-9.+=]+", "_", text).strip("_") or "x"


def load_grid(grid: str | os.PathLike[str] | dict[str, Any]) -> tuple[dict[str, Any], Path]:
    """Read and check a grid (YAML path or dict). Returns ``(grid, folder for relative paths)``."""
    from rs_vit.config import load_yaml

    if isinstance(grid, dict):
        data, base_dir = dict(grid), Path(".")
    else:
        data, base_dir = load_yaml(grid), Path(grid).parent
    source = "grid" if isinstance(grid, dict) else str(grid)
    unknown = [k for k in data if k not in GRID_KEYS]
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}.{suggest(unknown[0], GRID_KEYS)} "
                          f"Valid keys: {', '.join(GRID_KEYS)}.")
    if "base" not in data:
        raise ConfigError(f"{source}: needs 'base:' (a training config path or mapping).")
    axes = data.get("axes") or {}
    if not isinstance(axes, dict):
        raise ConfigError(f"{source}: 'axes' must map axis names to lists of values.")
    for name, values in axes.items():
        if name not in AXES and "." not in name:
            raise ConfigError(f"{source}: unknown axis {name!r}.{suggest(name, AXES)} Valid axes: "
                              f"{', '.join(AXES)}, or any dotted config key such as train.lr.")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: axis {name!r} must be a non-empty list, got {values!r}.")
    for f in axes.get("train_fraction", []):
        if not (isinstance(f, (int, float)) and 0 < f <= 1):
            raise ConfigError(f"{source}: train_fraction values must be in (0, 1], got {f!r}.")
    predict = {**PREDICT_DEFAULTS, **(data.get("predict") or {})}
    bad = [k for k in predict if k not in PREDICT_DEFAULTS]
    if bad:
        raise ConfigError(f"{source}: unknown predict key {bad[0]!r}.{suggest(bad[0], PREDICT_DEFAULTS)}")
    data["axes"], data["predict"] = axes, predict
    data["baseline"] = _baseline_specs(data.get("baseline"), source)
    return data, base_dir


def _baseline_specs(value: Any, source: str) -> list[dict[str, Any]]:
    """The ``baseline:`` entry as a list of option mappings (each with ``method``)."""
    from rs_vit.baseline import METHODS

    if value is None or value is False:
        return []
    items = value if isinstance(value, list) else [value]
    specs = []
    for item in items:
        spec = {"method": item} if isinstance(item, str) else item
        if not isinstance(spec, dict) or not isinstance(spec.get("method"), str):
            raise ConfigError(f"{source}: 'baseline' must be a method ({', '.join(METHODS)}), a list of them, "
                              f"or a mapping with 'method', got {item!r}.")
        bad = [k for k in spec if k not in BASELINE_KEYS]
        if bad:
            raise ConfigError(f"{source}: unknown baseline key {bad[0]!r}.{suggest(bad[0], BASELINE_KEYS)} "
                              f"Valid keys: {', '.join(BASELINE_KEYS)}.")
        if spec["method"] not in METHODS:
            raise ConfigError(f"{source}: unknown baseline method {spec['method']!r}."
                              f"{suggest(spec['method'], METHODS)} Choose one of {', '.join(METHODS)}.")
        seeds = spec.get("seeds")
        if seeds is not None and (not isinstance(seeds, list) or not seeds
                                  or not all(isinstance(s, int) for s in seeds)):
            raise ConfigError(f"{source}: baseline seeds must be a non-empty list of integers, got {seeds!r}.")
        specs.append(dict(spec))
    return specs


def _base_config(grid: dict[str, Any], base_dir: Path) -> Any:
    """The base :class:`~rs_vit.config.RunConfig` (paths resolved against the grid's folder)."""
    from rs_vit.config import load_config

    base = grid["base"]
    overrides: dict[str, Any] = {}
    if grid.get("seed") is not None:
        overrides["train.seed"] = int(grid["seed"])
    if isinstance(base, (str, Path)):
        path = Path(base) if Path(base).is_absolute() else base_dir / base
        return load_config(path, overrides)
    if not isinstance(base, dict):
        raise ConfigError("grid 'base' must be a config file path or a mapping of sections.")
    base = json.loads(json.dumps(base))  # deep copy
    from rs_vit.config import _resolve_paths

    # input paths (scenes, classes, chips, distill.teacher, train.init_from, model.weights) are
    # relative to the grid file, as in a config file
    _resolve_paths(base, base_dir)
    return load_config(None, {**{k: v for k, v in base.items()}, **overrides})


def _engine_default(name: str) -> Any:
    """The prediction engine's default overlap or blend (used when the grid has no such axis)."""
    from rs_vit.infer import engine

    return getattr(engine, f"DEFAULT_{name.upper()}")


def plan_grid(grid: str | os.PathLike[str] | dict[str, Any]) -> list[Cell]:
    """The cells of a grid in run order (training runs grouped), without running anything."""
    g, base_dir = load_grid(grid)
    axes: dict[str, list[Any]] = g["axes"]
    train_axes = [a for a in axes if a not in PREDICT_AXES]
    cells: list[Cell] = []
    for train_vals in itertools.product(*[axes[a] for a in train_axes]):
        tv = dict(zip(train_axes, train_vals))
        run = "-".join(f"{RUN_PREFIX.get(a, '')}{_slug(v)}" if a in AXES
                       else f"{_slug(a.split('.')[-1])}={_slug(v)}" for a, v in tv.items()) or "base"
        overrides = {(AXES.get(a) or a): v for a, v in tv.items() if a != "train_fraction"}
        for overlap, blend in itertools.product(axes.get("overlap") or [_engine_default("overlap")],
                                                axes.get("blend") or [_engine_default("blend")]):
            cells.append(Cell(
                id=f"{run}-ov{_slug(overlap)}-{_slug(blend)}", run=run,
                values={**tv, "overlap": overlap, "blend": blend}, overrides=overrides,
                train_fraction=float(tv.get("train_fraction", 1.0)), overlap=float(overlap),
                blend=str(blend),
            ))
    if g["baseline"]:
        default_seed = g.get("seed")
        if default_seed is None:
            default_seed = _base_config(g, base_dir).train.seed
        for spec in g["baseline"]:
            idx = spec.get("indices") or []
            name = "baseline-" + _slug(spec["method"]) + "".join(f"+{_slug(i)}" for i in idx)
            for seed in spec.get("seeds") or [default_seed]:
                for frac in axes.get("train_fraction") or [1.0]:
                    opts = {k: v for k, v in spec.items() if k != "seeds"}
                    cid = f"{name}-seed{seed}-frac{_slug(frac)}"
                    cells.append(Cell(id=cid, run=cid, values={"model": _baseline_label(spec), "train_fraction": frac},
                                      overrides={}, train_fraction=float(frac), overlap=0.0, blend="-",
                                      baseline={**opts, "seed": int(seed)}))
    return cells


def _baseline_label(spec: dict[str, Any]) -> str:
    """The ``model`` column of a baseline row, e.g. ``baseline:random_forest+ndvi``."""
    return f"baseline:{spec['method']}" + "".join(f"+{i}" for i in spec.get("indices") or [])


# -- data: one fixed train / held-out split, training-set sizes as crops -----------------------


def _crop(src_path: Path, rows: tuple[int, int], out: Path) -> Path:
    """Write rows ``rows`` of a raster as a GeoTIFF with the same bands, tags and georeferencing."""
    if out.is_file():
        return out
    from rs_vit.io.atomic import atomic_path

    with rasterio.open(src_path) as src:
        win = Window(0, rows[0], src.width, rows[1] - rows[0])
        profile = dict(src.profile)
        profile.update(height=int(win.height), transform=src.window_transform(win), driver="GTiff")
        for k in ("blockxsize", "blockysize", "tiled"):
            profile.pop(k, None)
        with atomic_path(out) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            dst.write(src.read(window=win))
            dst.update_tags(**src.tags())
            for i in range(1, src.count + 1):
                if src.descriptions[i - 1]:
                    dst.set_band_description(i, src.descriptions[i - 1])
                dst.update_tags(i, **src.tags(i))
            try:
                dst.write_colormap(1, src.colormap(1))
            except ValueError:
                pass
    return out


def _split_scenes(cfg: Any, fraction: float, data_dir: Path) -> tuple[list[dict], list[dict], int]:
    """Scene definitions for training (top ``fraction`` of the training rows) and for the held-out
    evaluation, as cropped GeoTIFFs. Returns ``(train_scenes, eval_scenes, train_pixels)``."""
    from rs_vit.io.labels import is_vector

    if getattr(cfg.data, "chips", None):
        raise ConfigError("compare works on scenes (data.scenes), not on chip folders (data.chips).")
    if not cfg.data.scenes:
        raise ConfigError("The base config has no data.scenes; add the scene(s) to compare on.")
    data_dir.mkdir(parents=True, exist_ok=True)
    train, held_out, pixels = [], [], 0
    for i, sd in enumerate(cfg.data.scenes):
        image = Path(sd.image)
        with rasterio.open(image) as src:
            H, W = src.height, src.width
        cut = {"auto": int(round(H * (1.0 - cfg.data.val_fraction))), "train": H, "val": 0}[sd.split]
        stem = f"{i}_{image.stem}"
        base = sd.model_dump(mode="json")
        vector = sd.labels is not None and is_vector(sd.labels)

        def crop(rows: tuple[int, int]) -> dict:
            d = dict(base)
            tag = f"rows{rows[0]}-{rows[1]}"
            d["image"] = str(_crop(image, rows, data_dir / f"{stem}_{tag}.tif"))
            if sd.labels is not None and not vector:
                d["labels"] = str(_crop(Path(sd.labels), rows, data_dir / f"{stem}_{tag}_labels.tif"))
            return d

        if cut > 0:
            n = max(1, int(round(cut * fraction)))
            train.append({**crop((0, n)), "split": "train"})
            pixels += n * W
        if cut < H:
            held_out.append({**crop((cut, H)), "split": "val"})
    if not train or not held_out:
        raise ConfigError("compare needs a training and a held-out part: use split: auto scenes "
                          "(data.val_fraction) or both a split: train and a split: val scene.")
    return train, held_out, pixels


# -- running ------------------------------------------------------------------------------------


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from rs_vit.evaluate.report import write_json

    write_json(data, path)


def _train_run(cfg: Any, cell: Cell, out_dir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Train (or reuse) the run of ``cell``; returns its ``train_result.json`` content."""
    from rs_vit.config import parse_config
    from rs_vit.models.checkpoint import load_model
    from rs_vit.train.loop import train

    run_dir = out_dir / "train" / cell.run
    done = run_dir / "train_result.json"
    if done.is_file():
        return json.loads(done.read_text())
    train_scenes, held_out, train_pixels = _split_scenes(cfg, cell.train_fraction, out_dir / "data")
    data = cfg.model_dump(mode="json")
    data["data"]["scenes"] = train_scenes + held_out
    for key, value in cell.overrides.items():
        cur = data
        *parents, last = key.split(".")
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[last] = value
    data["train"].update(out_dir=str(run_dir), overwrite=True)
    run_cfg = parse_config(data, source=f"grid cell {cell.run}")
    lines: list[str] = []
    t0 = time.perf_counter()
    result = train(run_cfg, log=lines.append, progress=False)
    seconds = time.perf_counter() - t0
    atomic_write_text(run_dir / "train_log.txt", "\n".join(lines) + "\n")
    model, _ = load_model(result.last_checkpoint)
    info = {
        "run": cell.run, "checkpoint": str(result.last_checkpoint), "train_s": round(seconds, 2),
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "train_pixels": train_pixels, "train_fraction": cell.train_fraction,
        "seed": run_cfg.train.seed, "epochs": run_cfg.train.epochs,
        "steps": run_cfg.train.epochs * run_cfg.train.steps_per_epoch,
        "batch_size": run_cfg.train.batch_size, "tile_size": run_cfg.train.tile_size,
        "held_out": held_out, "best_val_miou": result.best_miou,
    }
    _write_json(done, info)
    log(f"[train] {cell.run}: {seconds:.1f}s, {info['params_m']} M params")
    return info


def _eval_cell(cfg: Any, cell: Cell, run: dict[str, Any], predict: dict[str, Any],
               cell_dir: Path) -> dict[str, Any]:
    """Predict the held-out scenes with the cell's overlap/blend and evaluate them (pooled)."""
    from rs_vit.infer.engine import SlidingWindowPredictor, predict_scene
    from rs_vit.models.checkpoint import load_model

    cell_dir.mkdir(parents=True, exist_ok=True)
    model, spec = load_model(run["checkpoint"])
    predictor = SlidingWindowPredictor(
        model, spec, tile_size=predict["tile_size"], overlap=cell.overlap, blend=cell.blend,
        batch_size=int(predict["batch_size"]), device=predict["device"],
        precision=predict["precision"],
    )
    K, names = spec.num_classes, spec.class_names
    # warm-up (one-off allocations, kernel selection) so the timing below is steady-state
    predictor.forward(np.zeros((1, spec.in_channels, predictor.tile, predictor.tile), np.float32))
    seconds = pixels = windows = 0.0
    masks = []
    for i, sd in enumerate(run["held_out"]):
        mask = cell_dir / f"heldout{i}_mask.tif"
        r = predict_scene(sd["image"], mask, predictor=predictor, bands=cfg.data.bands,
                          sensor=cfg.data.sensor, overwrite=True)
        seconds += r.seconds
        pixels += r.width * r.height
        windows += r.windows
        masks.append(mask)
    metrics = _score_masks(cfg, masks, run["held_out"], names, predict)
    _write_json(cell_dir / "metrics.json", metrics)
    return {
        "cell": cell.id, "run": cell.run, "model": cell.values.get("model", cfg.model.name),
        "band_init": cell.values.get("band_init", cfg.model.band_init),
        "pretrained": cell.values.get("pretrained", cfg.model.pretrained),
        "train_fraction": cell.train_fraction, "train_pixels": run["train_pixels"],
        "overlap": cell.overlap, "blend": cell.blend, "seed": run["seed"],
        "epochs": run["epochs"], "steps": run["steps"],
        "miou": metrics["miou"], "boundary_f1": metrics["boundary"]["mean_f1"],
        "overall_accuracy": metrics["overall_accuracy"], "fwiou": metrics["fwiou"],
        "mean_f1": metrics["mean_f1"], "params_m": run["params_m"], "train_s": run["train_s"],
        "predict_s": round(seconds, 3), "windows": int(windows),
        "windows_per_s": round(windows / seconds, 2) if seconds else None,
        "mpx_per_s": round(pixels / seconds / 1e6, 4) if seconds else None,
        "per_class_iou": {pc["name"]: pc["iou"] for pc in metrics["per_class"]},
        "axes": cell.values,
    }


def _score_masks(cfg: Any, masks: list[Path], held_out: list[dict[str, Any]], names: list[str],
                 predict: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the held-out masks against their labels with ``evaluate_mask`` (pooled counts)."""
    from rs_vit.evaluate.boundary import BoundaryF1
    from rs_vit.evaluate.evaluator import evaluate_mask
    from rs_vit.evaluate.metrics import ConfusionMatrix, compute_metrics

    K, ignore = len(names), cfg.data.ignore_index
    cm = ConfusionMatrix(K, ignore_index=ignore)
    bf = BoundaryF1(K, tolerance=float(predict["tolerance"]), ignore_index=ignore)
    for mask, sd in zip(masks, held_out):
        m = evaluate_mask(mask, _reference(cfg, sd), class_names=names, ignore_index=ignore,
                          ignore_values=cfg.data.ignore_values, label_attribute=sd["label_attribute"],
                          background=cfg.data.background, tolerance=float(predict["tolerance"]))
        cm.merge(ConfusionMatrix.from_dict({"num_classes": K, "ignore_index": ignore,
                                            "matrix": m["confusion_matrix"]}))
        bf.merge(BoundaryF1.from_dict(m["boundary_counts"]))
    return compute_metrics(cm.matrix, names, boundary=bf.compute(names))


def _reference(cfg: Any, sd: dict[str, Any]) -> Path:
    """The labels to score a held-out crop against: its label file, or, for vector labels with a
    ``label_value`` (one class for every polygon, no class attribute), those labels rasterised on
    the crop's grid exactly as training reads them (``<crop>_labels.tif`` beside the crop)."""
    from rs_vit.config import SceneDef
    from rs_vit.io.labels import is_vector

    labels = Path(sd["labels"])
    if not is_vector(labels) or sd.get("label_value") is None:
        return labels
    out = Path(sd["image"]).with_name(Path(sd["image"]).stem + "_labels.tif")
    if out.is_file():
        return out
    from rs_vit.data.scenes import load_scene
    from rs_vit.io.raster import scene_info
    from rs_vit.io.writers import RasterSink, output_profile

    s = load_scene(SceneDef(**{**sd, "split": "val"}), cfg.data)
    dtype = "uint8" if cfg.data.ignore_index <= 255 else "uint16"
    info = scene_info(sd["image"], bands=cfg.data.bands, sensor=cfg.data.sensor)
    sink = RasterSink(out, output_profile(info.profile, count=1, dtype=dtype, nodata=cfg.data.ignore_index))
    step = max(1, 1_000_000 // max(1, s.width))
    with sink.open():
        for r in range(0, s.height, step):
            h = min(step, s.height - r)
            sink.write(r, s.read(r, 0, h, s.width)[1].astype(dtype))
    return out


def _baseline_cell(cfg: Any, cell: Cell, out_dir: Path, predict: dict[str, Any], cell_dir: Path,
                   log: Callable[[str], None]) -> dict[str, Any]:
    """Fit the per-pixel baseline on the cell's training crops, predict and score the held-out crops."""
    from rs_vit.baseline import BaselineOptions, fit_baseline, predict_baseline_scene, save_baseline
    from rs_vit.config import parse_config

    assert cell.baseline is not None
    spec = dict(cell.baseline)
    train_scenes, held_out, train_pixels = _split_scenes(cfg, cell.train_fraction, out_dir / "data")
    data = cfg.model_dump(mode="json")
    data["data"]["scenes"] = train_scenes + held_out
    run_cfg = parse_config(data, source=f"grid cell {cell.id}")
    opts = BaselineOptions(**{k: (tuple(v) if k == "indices" else v) for k, v in spec.items()})
    cell_dir.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    t0 = time.perf_counter()
    clf = fit_baseline(run_cfg, opts, log=lines.append)
    train_s = time.perf_counter() - t0
    save_baseline(clf, cell_dir / "baseline")
    atomic_write_text(cell_dir / "fit_log.txt", "\n".join(lines) + "\n")
    seconds = pixels = 0.0
    masks = []
    for i, sd in enumerate(held_out):
        mask = cell_dir / f"heldout{i}_mask.tif"
        r = predict_baseline_scene(clf, sd["image"], mask, bands=cfg.data.bands, sensor=cfg.data.sensor,
                                   overwrite=True)
        seconds += r.seconds
        pixels += r.width * r.height
        masks.append(mask)
    metrics = _score_masks(cfg, masks, held_out, clf.class_names, predict)
    _write_json(cell_dir / "metrics.json", metrics)
    log(f"[baseline] {cell.id}: fit {train_s:.1f}s on {sum(clf.info['train_pixels'].values())} pixels")
    return {
        "cell": cell.id, "run": cell.run, "model": cell.values["model"], "band_init": None,
        "pretrained": None, "train_fraction": cell.train_fraction, "train_pixels": train_pixels,
        "overlap": None, "blend": None, "seed": opts.seed, "epochs": None, "steps": None,
        "miou": metrics["miou"], "boundary_f1": metrics["boundary"]["mean_f1"],
        "overall_accuracy": metrics["overall_accuracy"], "fwiou": metrics["fwiou"],
        "mean_f1": metrics["mean_f1"], "params_m": None, "train_s": round(train_s, 2),
        "predict_s": round(seconds, 3), "windows": None, "windows_per_s": None,
        "mpx_per_s": round(pixels / seconds / 1e6, 4) if seconds else None,
        "per_class_iou": {pc["name"]: pc["iou"] for pc in metrics["per_class"]},
        "axes": cell.values, "baseline": {**spec, "sampled_pixels": clf.info["train_pixels"],
                                          "nodes": int(len(clf.left)), "depth": int(clf.depth)},
    }


def run_grid(
    grid: str | os.PathLike[str] | dict[str, Any],
    out_dir: str | os.PathLike[str],
    *,
    rerun: bool = False,
    report_only: bool = False,
    log: Callable[[str], None] = print,
) -> GridResult:
    """Run every cell of a grid that has no result yet, then write the table and plots.

    Args:
        grid: Grid YAML path or mapping (see the module docstring).
        out_dir: Output folder (created); finished cells in it are skipped.
        rerun: Run every cell again (training runs too).
        report_only: Run nothing: write the table and plots from the cells finished so far
            (the others are listed in ``GridResult.missing``).
        log: Progress messages.

    Returns:
        The rows of the results table and the paths written.

    Raises:
        ConfigError: For an invalid grid or base config.
    """
    g, base_dir = load_grid(grid)
    cfg = _base_config(g, base_dir)
    axes = g["axes"]
    if len(axes.get("band_init", [])) > 1 and not (
            any(axes.get("pretrained", [cfg.model.pretrained])) or cfg.model.weights or axes.get("model.weights")):
        raise ConfigError(f"axis band_init {axes['band_init']}: band_init only sets how bands without a "
                          "pretrained counterpart start, and every run trains from scratch, so the cells would "
                          "not differ; add a pretrained axis (or base model.pretrained / model.weights).")
    cells = plan_grid(g)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "grid.json", {"grid": g, "base": cfg.model_dump(mode="json")})
    result = GridResult(out, [])
    runs: dict[str, dict[str, Any]] = {}
    for n, cell in enumerate(cells, 1):
        cell_dir = out / "cells" / cell.id
        done = cell_dir / "result.json"
        if done.is_file() and not rerun:
            result.rows.append(json.loads(done.read_text()))
            result.skipped.append(cell.id)
            log(f"[{n}/{len(cells)}] {cell.id}: done before, skipped")
            continue
        if report_only:
            result.missing.append(cell.id)
            log(f"[{n}/{len(cells)}] {cell.id}: not run yet")
            continue
        if cell.baseline is not None:
            row = _baseline_cell(cfg, cell, out, g["predict"], cell_dir, log)
            _write_json(done, row)
            result.rows.append(row)
            result.ran.append(cell.id)
            log(f"[{n}/{len(cells)}] {cell.id}: mIoU {_f(row['miou'])}, boundary F1 "
                f"{_f(row['boundary_f1'])}, {row['mpx_per_s']} Mpx/s")
            continue
        if cell.run not in runs:
            if rerun:
                (out / "train" / cell.run / "train_result.json").unlink(missing_ok=True)
            runs[cell.run] = _train_run(cfg, cell, out, log)
        row = _eval_cell(cfg, cell, runs[cell.run], g["predict"], cell_dir)
        _write_json(done, row)
        result.rows.append(row)
        result.ran.append(cell.id)
        log(f"[{n}/{len(cells)}] {cell.id}: mIoU {_f(row['miou'])}, boundary F1 "
            f"{_f(row['boundary_f1'])}, {row['mpx_per_s']} Mpx/s")
    result.outputs = write_results(result.rows, out, cfg)
    return result


# -- table and plots ------------------------------------------------------------------------------


def _f(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def machine_description() -> str:
    """One line naming the CPU/GPU, core count, and torch version (for tables of timings)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dev = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu}, {os.cpu_count()} cores{dev}, torch {torch.__version__}"


def write_results(rows: list[dict[str, Any]], out: Path, cfg: Any = None) -> dict[str, Path]:
    """Write ``results.csv``, ``results.md`` and the three plots for the rows of a grid."""
    from rs_vit.evaluate.report import _atomic_write

    rows = sorted(rows, key=lambda r: (str(r["model"]).startswith("baseline:"), str(r["model"]),
                                       str(r["band_init"]), r["train_fraction"],
                                       -1.0 if r["overlap"] is None else r["overlap"], str(r["blend"]),
                                       r.get("seed") if isinstance(r.get("seed"), int) else -1))
    paths = {"csv": out / "results.csv", "md": out / "results.md"}

    def write_csv(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=RESULT_FIELDS, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: "" if r.get(k) is None else r.get(k) for k in RESULT_FIELDS})

    _atomic_write(paths["csv"], write_csv)
    cols = [("model", "model", "s"), ("band_init", "band init", "s"), ("pretrained", "pretrained", "s"),
            ("train_fraction", "train frac", "g"), ("train_pixels", "train px", ","),
            ("overlap", "overlap", "g"), ("blend", "blend", "s"), ("seed", "seed", "s"),
            ("miou", "mIoU", ".4f"), ("boundary_f1", "boundary F1", ".4f"), ("overall_accuracy", "OA", ".4f"),
            ("params_m", "params (M)", ".2f"), ("train_s", "train s", ".1f"),
            ("windows_per_s", "windows/s", ".2f"), ("mpx_per_s", "Mpx/s", ".4f")]
    lines = ["| " + " | ".join(h for _, h, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for k, _, fmt in cols:
            v = r.get(k)
            cells.append("-" if v is None else (str(v) if fmt == "s" else format(v, fmt)))
        lines.append("| " + " | ".join(cells) + " |")
    header = []
    if cfg is not None:
        t = cfg.train
        header = [
            f"Scenes: {', '.join(Path(s.image).name for s in cfg.data.scenes)}; held-out part: "
            f"bottom {cfg.data.val_fraction:g} of the rows of each auto-split scene.",
            f"Budget per training run: {t.epochs} epoch(s) × {t.steps_per_epoch} steps × batch "
            f"{t.batch_size}, tile {t.tile_size}, lr {t.lr:g}, {_seeds_text(rows, t.seed)}, "
            f"precision {t.precision}; evaluated: last checkpoint."
            + (" Rows named baseline:… are per-pixel classifiers fit on the same training pixels."
               if any(str(r["model"]).startswith("baseline:") for r in rows) else ""),
            f"Machine: {machine_description()}.", "",
        ]
    text = "\n".join(header + lines + summary_lines(rows)) + "\n"

    def write_md(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    _atomic_write(paths["md"], write_md)
    if rows:
        paths.update(plot_results(rows, out))
    return paths


def _seeds_text(rows: list[dict[str, Any]], default: int) -> str:
    seeds = sorted({str(r["seed"]) for r in rows if r.get("seed") is not None}) or [str(default)]
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(seeds)}"


def summary_lines(rows: list[dict[str, Any]]) -> list[str]:
    """A Markdown table of mean ± standard deviation over seeds for each setting (empty when no
    setting ran with more than one seed)."""
    keys = ["model", "band_init", "pretrained", "train_fraction", "overlap", "blend"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(json.dumps([r.get(k) for k in keys]), []).append(r)
    if not any(len(g) > 1 for g in groups.values()):
        return []

    def ms(vals: list[Any], fmt: str = ".4f") -> str:
        v = [float(x) for x in vals if x is not None]
        if not v:
            return "-"
        return f"{np.mean(v):{fmt}} ± {np.std(v, ddof=1) if len(v) > 1 else 0.0:{fmt}}"

    out = ["", "Mean ± standard deviation over seeds:", "",
           "| model | train frac | overlap | seeds | mIoU | boundary F1 | OA | train s |", "|---|---|---|---|---|---|---|---|"]
    for g in groups.values():
        r = g[0]
        out.append(f"| {r['model']} | {r['train_fraction']:g} | {'-' if r.get('overlap') is None else format(r['overlap'], 'g')} "
                   f"| {len(g)} | {ms([x['miou'] for x in g])} | {ms([x['boundary_f1'] for x in g])} "
                   f"| {ms([x['overall_accuracy'] for x in g])} | {ms([x['train_s'] for x in g], '.0f')} |")
    return out


_SHORT = {"train_fraction": "frac", "overlap": "ov", "band_init": "init", "pretrained": "pre", "blend": "blend"}


def _label(r: dict[str, Any], keys: list[str]) -> str:
    return " ".join(f"{_SHORT.get(k, k)}={_slug(r[k])}" if k != "model" else str(r[k]) for k in keys)


def _varying(rows: list[dict[str, Any]], keys: list[str]) -> list[str]:
    return [k for k in keys if len({json.dumps(r.get(k)) for r in rows}) > 1]


def plot_results(rows: list[dict[str, Any]], out: Path) -> dict[str, Path]:
    """Accuracy vs throughput, accuracy vs training-set size, boundary F1 by model (PNG)."""
    from matplotlib.figure import Figure

    from rs_vit.evaluate.report import _atomic_write

    paths: dict[str, Path] = {}
    setting_keys = ["model", "band_init", "pretrained", "train_fraction", "overlap", "blend"]
    vary = _varying(rows, setting_keys) or ["model"]

    def axes() -> tuple[Figure, Any]:
        fig = Figure(figsize=(6.4, 4.4), layout="constrained")
        return fig, fig.add_subplot()

    def save(fig: Figure, ax: Any, name: str, title: str, xlabel: str | None, ylabel: str,
             legend: int | None, grid: bool = True) -> None:
        """Label, legend (font size ``legend``; None = no legend), grid, then write atomically."""
        if xlabel:
            ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if grid:
            ax.grid(alpha=0.3)
        if legend:
            ax.legend(fontsize=legend)
        paths[name] = _atomic_write(out / f"{name}.png", lambda tmp: fig.savefig(tmp, format="png", dpi=120))

    # 1. accuracy vs throughput: one marker per cell
    fig, ax = axes()
    models = sorted({str(r["model"]) for r in rows})
    markers = "osD^v<>PX*"
    for i, m in enumerate(models):
        sel = [r for r in rows if str(r["model"]) == m and r.get("mpx_per_s") and r.get("miou") is not None]
        ax.scatter([r["mpx_per_s"] for r in sel], [r["miou"] for r in sel], marker=markers[i % 10], label=m, s=40)
        for r in sel:
            ax.annotate(_label(r, [k for k in vary if k != "model"]), (r["mpx_per_s"], r["miou"]),
                        fontsize=6, xytext=(3, 3), textcoords="offset points")
    save(fig, ax, "accuracy_vs_throughput", "Accuracy vs. throughput",
         "prediction throughput (megapixels / s)", "held-out mIoU", legend=8)

    # 2. accuracy vs training-set size: one line per everything-but-size
    fig, ax = axes()
    line_keys = [k for k in vary if k != "train_fraction"] or ["model"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(_label(r, line_keys), []).append(r)
    for name, sel in sorted(groups.items()):
        sel = sorted((r for r in sel if r.get("miou") is not None), key=lambda r: r["train_pixels"])
        ax.plot([r["train_pixels"] / 1e6 for r in sel], [r["miou"] for r in sel], marker="o", label=name)
    save(fig, ax, "accuracy_vs_train_size", "Accuracy vs. training-set size",
         "labelled training pixels (millions)", "held-out mIoU", legend=7)

    # 3. boundary F1 by model: grouped bars, one bar per other setting
    fig, ax = axes()
    other = [k for k in vary if k != "model"]
    settings = sorted({_label(r, other) for r in rows}) if other else [""]
    width = 0.8 / max(1, len(settings))
    for j, s in enumerate(settings):
        vals = []
        for m in models:
            hit = [r for r in rows if str(r["model"]) == m and (not other or _label(r, other) == s)]
            vals.append(float(np.mean([r["boundary_f1"] for r in hit if r.get("boundary_f1") is not None]))
                        if hit else 0.0)
        ax.bar(np.arange(len(models)) + (j - (len(settings) - 1) / 2) * width, vals, width,
               label=s or None)
    ax.set_xticks(range(len(models)), labels=models)
    ax.set_ylim(0, 1)
    save(fig, ax, "boundary_f1_by_model", "Boundary F1 by model", None, "held-out boundary F1",
         legend=6 if other else None, grid=False)
    return paths
