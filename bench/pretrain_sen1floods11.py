"""Does self-supervised pretraining on the scene's own unlabelled pixels help? (docs/training.md)

On the real Sen1Floods11 chip (Spain_7370579, Sentinel-2 L1C, 13 bands, hand-drawn water label;
../shared/data/sen1floods11), the bottom 30 % of the rows held out for validation:

1. ``rs-vit pretrain`` the model's encoder (SimMIM for SegFormer, MAE for ViTs) on the image pixels
   of the training rows only (``pretrain.area: train``: the validation rows are never seen, not
   even unlabelled);
2. ``rs-vit train`` from scratch and ``rs-vit train --init-from RUN/encoder`` with the same recipe
   as bench/baseline_sen1floods11.yaml, for each seed;
3. write ``OUT/results.json`` and a Markdown table ``OUT/results.md``.

Run (CPU, bf16; a few minutes per run on two busy cores)::

    OMP_NUM_THREADS=1 .venv/bin/python bench/pretrain_sen1floods11.py --out runs/pretrain_s1f11 \\
        --model segformer_b0 --pretrain-epochs 8 --pretrain-steps 40 --seeds 0

The equivalent commands are printed as the script runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "sen1floods11"
CLASSES = [{"id": 0, "name": "not_water", "color": [200, 200, 200]},
           {"id": 1, "name": "water", "color": [0, 90, 255]}]


def data_section() -> dict[str, Any]:
    return {"scenes": [{"image": str(SHARED / "Spain_7370579_S2Hand.tif"),
                        "labels": str(SHARED / "Spain_7370579_LabelHand.tif")}],
            "classes": CLASSES, "ignore_values": [-1], "val_fraction": 0.3, "class_balanced": 0.5}


def train_section(out: Path, seed: int, **kw: Any) -> dict[str, Any]:
    t = {"out_dir": str(out), "epochs": 10, "steps_per_epoch": 20, "batch_size": 8, "tile_size": 128,
         "lr": 0.0015, "warmup_steps": 10, "loss": "ce+dice", "precision": "bf16", "plots": False,
         "tensorboard": False, "seed": seed, "overwrite": True}
    t.update(kw)
    return t


def last_row(run: Path) -> dict[str, str]:
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    return rows[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/pretrain_s1f11"))
    ap.add_argument("--model", default="segformer_b0")
    ap.add_argument("--pretrain-epochs", type=int, default=8)
    ap.add_argument("--pretrain-steps", type=int, default=40)
    ap.add_argument("--pretrain-batch", type=int, default=16)
    ap.add_argument("--pretrain-lr", type=float, default=1e-3)
    ap.add_argument("--area", default="train", choices=["train", "all"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--skip-scratch", action="store_true", help="only the fine-tuned runs")
    args = ap.parse_args()

    from rs_vit.config import PretrainRunConfig, parse_config
    from rs_vit.train.loop import train
    from rs_vit.train.pretrain import pretrain

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"model": args.model, "area": args.area, "runs": []}
    res_path = out / "results.json"
    if res_path.is_file():
        results = json.loads(res_path.read_text())
    enc = out / "pretrain" / "encoder"
    if not (enc / "model.safetensors").is_file():
        cfg = {"data": data_section(), "model": {"name": args.model},
               "train": train_section(out / "pretrain", 0, epochs=args.pretrain_epochs,
                                      steps_per_epoch=args.pretrain_steps, batch_size=args.pretrain_batch,
                                      lr=args.pretrain_lr, warmup_steps=20, weight_decay=0.05, plots=True),
               "pretrain": {"area": args.area}}
        print(f"$ rs-vit pretrain --image {SHARED / 'Spain_7370579_S2Hand.tif'} --model {args.model} "
              f"--area {args.area} --epochs {args.pretrain_epochs} --steps-per-epoch {args.pretrain_steps} "
              f"--batch-size {args.pretrain_batch} --tile-size 128 --lr {args.pretrain_lr} --precision bf16 "
              f"-o {out / 'pretrain'}", flush=True)
        t0 = time.perf_counter()
        pretrain(parse_config(cfg, schema=PretrainRunConfig), progress=False)  # type: ignore[arg-type]
        results["pretrain_seconds"] = round(time.perf_counter() - t0, 1)
        results["pretrain_loss"] = [float(r["train_loss"]) for r in csv.DictReader(open(out / "pretrain" / "metrics.csv"))]
        res_path.write_text(json.dumps(results, indent=2))
    done = {(r["init"], r["seed"]) for r in results["runs"]}
    for seed in args.seeds:
        for init in (["scratch"] if not args.skip_scratch else []) + ["pretrained"]:
            if (init, seed) in done:
                continue
            run = out / f"{init}_s{seed}"
            tr = train_section(run, seed, **({"init_from": str(enc)} if init == "pretrained" else {}))
            cfg = {"data": data_section(), "model": {"name": args.model}, "train": tr}
            print(f"$ rs-vit train --config <recipe> --model {args.model} --seed {seed}"
                  + (f" --init-from {enc}" if init == "pretrained" else "") + f" -o {run}", flush=True)
            t0 = time.perf_counter()
            r = train(parse_config(cfg), progress=False)
            last = last_row(run)
            results["runs"].append({
                "init": init, "seed": seed, "best_miou": round(r.best_miou, 4), "best_epoch": r.best_epoch,
                "last_miou": float(last["val_miou"]), "last_iou_water": float(last["iou_water"]),
                "seconds": round(time.perf_counter() - t0, 1)})
            res_path.write_text(json.dumps(results, indent=2))
    lines = ["| start | seed | val mIoU (last epoch) | IoU water (last) | best val mIoU (epoch) | train time |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in sorted(results["runs"], key=lambda r: (r["init"], r["seed"])):
        lines.append(f"| {r['init']} | {r['seed']} | {r['last_miou']:.3f} | {r['last_iou_water']:.3f} | "
                     f"{r['best_miou']:.3f} ({r['best_epoch']}) | {r['seconds']:.0f} s |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
