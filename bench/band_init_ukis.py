"""Real pretrained weights, adapted to bands they never saw: does band_init matter, and does the
pretraining help? (docs/band-adaptation.md)

The one real multispectral network at hand is ukis-csmask (../shared/data/ukis_csmask): an smp
U-Net with an EfficientNet-B4 encoder trained for clouds on 6 Sentinel-2 L1C bands (blue, green,
red, nir, swir16, swir22). On the real 13-band Sen1Floods11 chip (Spain_7370579, hand-drawn water
label; ../shared/data/sen1floods11) this script fine-tunes it for water with the 7 bands it lacks
(coastal, rededge1-3, nir08, water vapour, cirrus) initialised by ``band_init`` zero / mean /
random, against the same architecture trained from scratch, for each seed:

1. ``rs-vit import-weights`` the ukis file with its description (bands, reflectance statistics)
   into an rs-vit checkpoint (once);
2. ``rs-vit train`` with ``model.weights`` = that checkpoint (its kernels land on the 6 bands by
   name; the 3-class head is dropped for the 2-class task) or from scratch; the same recipe,
   data split and normalisation (training-pixel statistics of all 13 bands) for every run;
3. print a Markdown table (validation mIoU / water IoU, mean +- std over seeds) and write
   ``OUT/results.json``.

Validation is spatially held out: the bottom ``--val-fraction`` of the chip's rows
(``data.split_mode: rows``), never sampled for training. Run (CPU, bf16)::

    OMP_NUM_THREADS=2 .venv/bin/python bench/band_init_ukis.py --out runs/band_init_ukis
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
S1F11 = SHARED / "sen1floods11"
UKIS = SHARED / "ukis_csmask"
WEIGHTS = UKIS / "ukis_csmask_6b_l1c_smp_unet_effb4_fp16.safetensors"
CLASSES = [{"id": 0, "name": "not_water", "color": [200, 200, 200]},
           {"id": 1, "name": "water", "color": [0, 90, 255]}]
MODEL = {"name": "smp_model", "kwargs": {"arch": "Unet", "encoder": "efficientnet-b4"}}


def import_ukis(out: Path) -> Path:
    """The ukis-csmask weights as an rs-vit checkpoint (bands and statistics from its JSON)."""
    from rs_vit.models.foreign import import_weights

    ck = out / "ukis_ck6"
    if (ck / "rs_vit.json").is_file():
        return ck
    meta = json.loads((UKIS / "model_6b_l1c.json").read_text())["data"]
    mean, std = meta["dataset_statistics"]["img"]
    desc = {"model": MODEL["name"], "model_kwargs": MODEL["kwargs"],
            "bands": meta["dataset_statistics"]["band_names"], "mean": mean, "std": std, "scale": 10000,
            "classes": ["clear", "cloud", "cloud_shadow"], "tile_size": meta["target_size"][0], "nodata": 0}
    out.mkdir(parents=True, exist_ok=True)
    (out / "ukis.json").write_text(json.dumps(desc))
    ck, log = import_weights(WEIGHTS, out / "ukis.json", ck)
    print(f"$ rs-vit import-weights {WEIGHTS} -d {out / 'ukis.json'} -o {ck}")
    for line in log:
        print("   ", line)
    return ck


def run_config(args: argparse.Namespace, condition: str, seed: int, ck: Path) -> dict[str, Any]:
    model: dict[str, Any] = {**MODEL}
    if condition != "scratch":
        model.update(weights=str(ck / "model.safetensors"), band_init=condition)
    return {
        "data": {"scenes": [{"image": str(S1F11 / "Spain_7370579_S2Hand.tif"),
                             "labels": str(S1F11 / "Spain_7370579_LabelHand.tif")}],
                 "classes": CLASSES, "ignore_values": [-1], "val_fraction": args.val_fraction,
                 "split_mode": "rows", "class_balanced": 0.5},
        "model": model,
        "train": {"out_dir": str(args.out / f"{condition}_s{seed}"), "overwrite": True, "seed": seed,
                  "epochs": args.epochs, "steps_per_epoch": args.steps, "batch_size": args.batch_size,
                  "tile_size": args.tile, "lr": args.lr, "warmup_steps": args.warmup, "loss": "ce+dice",
                  "precision": "bf16", "plots": False, "tensorboard": False},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/band_init_ukis"))
    p.add_argument("--conditions", default="zero,mean,random,scratch")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--steps", type=int, default=4, help="training steps per epoch")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--tile", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--val-fraction", type=float, default=0.25)
    p.add_argument("--merge", type=Path, nargs="*", default=[],
                   help="results.json of other runs of this script (e.g. seeds run in parallel) to add to the table")
    args = p.parse_args(argv)
    if not (WEIGHTS.is_file() and (S1F11 / "Spain_7370579_S2Hand.tif").is_file()):
        print(f"real data not found under {SHARED}", file=sys.stderr)
        return 2

    from rs_vit.config import parse_config
    from rs_vit.train.loop import train

    ck = import_ukis(args.out)
    conditions = args.conditions.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    results: list[dict[str, Any]] = []
    res_path = args.out / "results.json"
    if res_path.is_file():
        results = json.loads(res_path.read_text())
    done = {(r["condition"], r["seed"]) for r in results}
    for seed in seeds:  # seeds outermost: a shrunk run still compares every condition
        for cond in conditions:
            if (cond, seed) in done:
                continue
            cfg = run_config(args, cond, seed, ck)
            t0 = time.time()
            lines: list[str] = []

            def log(line: str, lines: list[str] = lines) -> None:
                lines.append(line)
                if line.startswith(("weights ", "  first layer", "Trained from scratch")):
                    print("   ", line, flush=True)

            print(f"[{cond} seed {seed}]", flush=True)
            r = train(parse_config(cfg), log=log, progress=False)
            last = r.history[-1]
            best = max(r.history, key=lambda h: h["val_miou"] or 0.0)
            rec = {"condition": cond, "seed": seed, "best_miou": r.best_miou, "best_epoch": r.best_epoch,
                   "final_miou": last["val_miou"], "final_water_iou": last.get("iou_water"),
                   "best_water_iou": best.get("iou_water"), "seconds": round(time.time() - t0, 1)}
            print(f"    -> final mIoU {rec['final_miou']:.4f}, best {rec['best_miou']:.4f} "
                  f"(epoch {rec['best_epoch']}), {rec['seconds']} s", flush=True)
            results.append(rec)
            res_path.write_text(json.dumps(results, indent=1))
    for extra in args.merge:
        results += [r for r in json.loads(extra.read_text())
                    if (r["condition"], r["seed"]) not in {(q["condition"], q["seed"]) for q in results}]
    print(table(results, args))
    return 0


def _ms(vals: list[float]) -> str:
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{statistics.mean(vals):.3f} ± {statistics.stdev(vals):.3f}"


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """Markdown table: one row per condition, mean ± std over seeds."""
    rows = ["| start | band_init (7 new bands) | seeds | final val mIoU | final val water IoU | best val mIoU | s / run |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for cond in args.conditions.split(","):
        rs = [r for r in results if r["condition"] == cond]
        if not rs:
            continue
        start = "from scratch" if cond == "scratch" else "ukis-csmask (6 bands)"
        rows.append(f"| {start} | {'-' if cond == 'scratch' else cond} | {len(rs)} | "
                    f"{_ms([r['final_miou'] for r in rs])} | {_ms([r['final_water_iou'] for r in rs])} | "
                    f"{_ms([r['best_miou'] for r in rs])} | {statistics.mean(r['seconds'] for r in rs):.0f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
