"""The documented recipe: a transformer (SegFormer-B0, from scratch) trained on the real SpaceNet
panchromatic chip with the 43 building polygons, against a per-pixel baseline, on the held-out
bottom 30 % of the chip. For docs/training.md.

    OMP_NUM_THREADS=1 .venv/bin/python bench/train_recipe_spacenet.py --out runs/recipe_spacenet
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

SPACENET = Path(__file__).resolve().parents[2] / "shared" / "data" / "spacenet_buildings"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("runs/recipe_spacenet"))
    ap.add_argument("--model", default="segformer_b0")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--loss", default="ce+dice")
    args = ap.parse_args()

    from rs_vit.config import parse_config
    from rs_vit.data.scenes import load_scene
    from rs_vit.data.split import TRAIN, VAL
    from rs_vit.data.stats import training_stats
    from rs_vit.evaluate.metrics import ConfusionMatrix, compute_metrics
    from rs_vit.io.raster import normalize
    from rs_vit.train.loop import train

    cfg = parse_config({
        "data": {"scenes": [{"image": str(SPACENET / "sample_geotiff.tif"),
                             "labels": str(SPACENET / "geotiff_labels.geojson"), "label_value": 1}],
                 "classes": [{"id": 0, "name": "background", "color": [0, 0, 0]},
                             {"id": 1, "name": "building", "color": [255, 0, 0]}],
                 "background": 0, "val_fraction": 0.3, "class_balanced": 0.5},
        "model": {"name": args.model},
        "train": {"out_dir": str(args.out / args.model), "overwrite": True, "epochs": args.epochs,
                  "steps_per_epoch": args.steps, "batch_size": 8, "tile_size": args.tile, "lr": args.lr,
                  "warmup_steps": 10, "precision": "bf16", "loss": args.loss, "seed": 0},
    })
    # per-pixel baseline: logistic regression on the (normalised) pan value, same split
    s = load_scene(cfg.data.scenes[0], cfg.data, tile=args.tile, seed=0)
    mean, std = training_stats([s])

    def pixels(role: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for r0, r1, c0, c1 in s.split.cells(role):
            img, lab, inv = s.read(r0, c0, r1 - r0, c1 - c0)
            xs.append(normalize(img, mean, std, inv).reshape(img.shape[0], -1).T)
            ys.append(lab.reshape(-1))
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    x, y = pixels(TRAIN)
    torch.manual_seed(0)
    feats = lambda v: torch.cat([v, v ** 2, v ** 3], 1)  # noqa: E731  (a cubic in the pan value)
    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(lin.parameters(), lr=0.05)
    w = torch.tensor([1.0, float((y == 0).sum() / max(1, (y == 1).sum()))])  # balanced: else all background
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        i = torch.randint(0, len(y), (8192,), generator=g)
        loss = torch.nn.functional.cross_entropy(lin(feats(x[i])), y[i], weight=w)
        opt.zero_grad()
        loss.backward()
        opt.step()
    xv, yv = pixels(VAL)
    cm = ConfusionMatrix(2, ignore_index=255)
    with torch.no_grad():
        cm.update(lin(feats(xv)).argmax(1).numpy(), yv.numpy())
    base = compute_metrics(cm.matrix, ["background", "building"])
    t0 = time.perf_counter()
    r = train(cfg, log=lambda m: print(m, flush=True), progress=False)
    best = max(r.history, key=lambda h: h["val_miou"] or 0)
    out = {"per_pixel_baseline": {"miou": round(base["miou"], 4),
                                  "building_iou": round(base["per_class"][1]["iou"], 4)},
           args.model: {"best_epoch": best["epoch"], "miou": best["val_miou"], "building_iou": best["iou_building"],
                        "train_seconds": round(time.perf_counter() - t0, 1)},
           "args": {k: str(v) for k, v in vars(args).items()}}
    (args.out / "results.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
