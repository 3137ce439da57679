"""The table of docs/training.md, "Small labelled areas: is a deep model worth it?", from the
finished cells of the `rs-vit compare` grids in this folder (baseline_sen1floods11.yaml,
baseline_spacenet.yaml, baseline_distill_token.yaml): mean ± sample standard deviation over the
seeds that finished, per scene and model, with the per-class IoU and the wall-clock times.

    rs-vit compare bench/baseline_sen1floods11.yaml --out-dir runs/small/sen1floods11
    rs-vit compare bench/baseline_spacenet.yaml --out-dir runs/small/spacenet
    .venv/bin/python bench/baseline_table.py runs/small/sen1floods11 runs/small/spacenet
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _ms(values: list[float], digits: int = 3) -> str:
    v = np.asarray(values, float)
    if v.size == 0:
        return "-"
    if v.size == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def table(folder: Path) -> list[str]:
    """Markdown rows for one grid output folder."""
    rows = [json.loads(p.read_text()) for p in sorted(folder.glob("cells/*/result.json"))]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        key = str(r["model"])
        run = r.get("run", "")
        if "distill_head=" in run:
            key += " (distill_head=" + run.split("distill_head=")[1].split("-")[0] + ")"
        groups.setdefault(key, []).append(r)
    classes = list(rows[0]["per_class_iou"]) if rows else []
    out = [f"| model | seeds | mIoU | {' | '.join(f'IoU {c}' for c in classes)} | boundary F1 | fit / train s | predict s |",
           "|---|---|---|" + "---|" * len(classes) + "---|---|---|"]
    order = {"baseline:random_forest": 0}
    for key in sorted(groups, key=lambda k: (not k.startswith("baseline"), order.get(k, 1), k)):
        g = groups[key]
        seeds = ",".join(str(r["seed"]) for r in sorted(g, key=lambda r: r["seed"]))
        per = [_ms([r["per_class_iou"][c] for r in g if r["per_class_iou"].get(c) is not None]) for c in classes]
        out.append(f"| {key} | {seeds} | {_ms([r['miou'] for r in g])} | {' | '.join(per)} | "
                   f"{_ms([r['boundary_f1'] for r in g])} | {_ms([r['train_s'] for r in g], 0)} | "
                   f"{_ms([r['predict_s'] for r in g], 1)} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    args = ap.parse_args()
    for f in args.folders:
        print(f"\n{f}:\n")
        print("\n".join(table(f)))


if __name__ == "__main__":
    main()
