"""Does DeiT-style distillation help a transformer trained on little data? And does the
transformer beat a per-pixel baseline? A small CPU experiment for docs/training.md.

    OMP_NUM_THREADS=1 .venv/bin/python bench/train_distill.py --scene sample_data/scene.tif \
        --labels sample_data/labels.tif --classes sample_data/classes.yaml --out runs/bench_distill

The scene is cut into a small training strip (the top ``--train-rows`` rows) and a validation
strip (the bottom ``--val-rows`` rows), written as two GeoTIFF pairs (split by scene). On the same
budget it trains: a per-pixel baseline (logistic regression on the normalised bands, i.e. a
1x1 convolution), a CNN teacher (U-Net ResNet-18), a transformer student (SegFormer-B0) alone,
and the same student distilled from the teacher. Prints a Markdown table of validation mIoU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.windows import Window
from rasterio.windows import transform as wtransform


def crop(src_path: Path, out: Path, r0: int, r1: int) -> Path:
    with rasterio.open(src_path) as src:
        w = Window(0, r0, src.width, r1 - r0)
        prof = {**src.profile, "height": r1 - r0, "transform": wtransform(w, src.transform)}
        prof.pop("blockxsize", None), prof.pop("blockysize", None)
        prof["tiled"] = False
        with rasterio.open(out, "w", **prof) as dst:
            dst.write(src.read(window=w))
            for i, d in enumerate(src.descriptions, 1):
                if d:
                    dst.set_band_description(i, d)
    return out


def per_pixel_baseline(scenes, classes, ignore: int, steps: int = 300) -> float:
    """Multinomial logistic regression on normalised band values, evaluated on the val scene."""
    from rs_vit.data.scenes import load_scene
    from rs_vit.data.split import TRAIN
    from rs_vit.data.stats import training_stats
    from rs_vit.evaluate.metrics import ConfusionMatrix, compute_metrics
    from rs_vit.io.raster import normalize

    tr, va = scenes
    mean, std = training_stats([tr])

    def xy(s):
        img, lab, inv = s.read(0, 0, s.height, s.width)
        x = normalize(img, mean, std, inv).reshape(img.shape[0], -1).T
        y = lab.reshape(-1)
        return torch.from_numpy(x), torch.from_numpy(y)

    x, y = xy(tr)
    keep = y != ignore
    x, y = x[keep], y[keep]
    lin = torch.nn.Linear(x.shape[1], len(classes))
    opt = torch.optim.AdamW(lin.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(y), (8192,), generator=g)
        loss = torch.nn.functional.cross_entropy(lin(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    xv, yv = xy(va)
    with torch.no_grad():
        pred = lin(xv).argmax(1)
    cm = ConfusionMatrix(len(classes), ignore_index=ignore)
    cm.update(pred.numpy(), yv.numpy())
    return float(compute_metrics(cm.matrix, [c.name for c in classes])["miou"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scene", type=Path, required=True)
    ap.add_argument("--labels", type=Path, required=True)
    ap.add_argument("--classes", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_distill"))
    ap.add_argument("--train-rows", type=int, default=192)
    ap.add_argument("--val-rows", type=int, default=256)
    ap.add_argument("--steps", type=int, default=30, help="optimiser steps per epoch")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from rs_vit.config import DataConfig, SceneDef, load_classes, parse_config
    from rs_vit.data.scenes import load_scene
    from rs_vit.train.loop import train

    args.out.mkdir(parents=True, exist_ok=True)
    with rasterio.open(args.scene) as src:
        H = src.height
    d = args.out / "data"
    d.mkdir(exist_ok=True)
    ti, tl = crop(args.scene, d / "train.tif", 0, args.train_rows), crop(args.labels, d / "train_labels.tif", 0, args.train_rows)
    vi, vl = crop(args.scene, d / "val.tif", H - args.val_rows, H), crop(args.labels, d / "val_labels.tif", H - args.val_rows, H)
    classes = load_classes(args.classes)
    scenes = [{"image": str(ti), "labels": str(tl), "split": "train"},
              {"image": str(vi), "labels": str(vl), "split": "val"}]

    def run(name: str, model: str, **extra) -> dict:
        cfg = {"data": {"scenes": scenes, "classes": [c.model_dump() for c in classes]},
               "model": {"name": model},
               "train": {"out_dir": str(args.out / name), "overwrite": True, "epochs": args.epochs,
                         "steps_per_epoch": args.steps, "batch_size": args.batch, "tile_size": args.tile,
                         "lr": 1e-3, "warmup_steps": 10, "precision": "bf16", "seed": args.seed,
                         "plots": False, "tensorboard": False}}
        for k, v in extra.items():
            cfg.setdefault(k, {}).update(v)
        t0 = time.perf_counter()
        r = train(parse_config(cfg), log=lambda m: print(f"[{name}] {m}", flush=True), progress=False)
        return {"run": name, "model": model, "best_val_miou": round(r.best_miou, 4),
                "final_val_miou": r.history[-1]["val_miou"], "seconds": round(time.perf_counter() - t0, 1)}

    dc = DataConfig(scenes=[SceneDef(**s) for s in scenes], classes=classes)
    sc = [load_scene(s, dc) for s in dc.scenes]
    t0 = time.perf_counter()
    results = [{"run": "per_pixel_logreg", "model": "logistic regression (1x1)",
                "best_val_miou": round(per_pixel_baseline(sc, classes, dc.ignore_index), 4),
                "final_val_miou": None, "seconds": round(time.perf_counter() - t0, 1)}]
    print(results[-1], flush=True)
    results.append(run("teacher_unet", "unet_resnet18"))
    print(results[-1], flush=True)
    results.append(run("student_alone", "segformer_b0"))
    print(results[-1], flush=True)
    results.append(run("student_distilled", "segformer_b0",
                       distill={"teacher": str(args.out / "teacher_unet" / "best"), "alpha": 0.5,
                                "temperature": 2.0, "mode": "soft"}))
    print(results[-1], flush=True)
    (args.out / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                       "results": results}, indent=2))
    print("| run | model | best val mIoU | last val mIoU | seconds |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['run']} | {r['model']} | {r['best_val_miou']} | {r['final_val_miou']} | {r['seconds']} |")


if __name__ == "__main__":
    main()
