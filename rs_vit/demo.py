"""``make demo`` / ``python -m rs_vit.demo``: train → predict → evaluate on the bundled scene.

Runs on a CPU in a few minutes and needs no network: the model is trained from scratch.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"


def _preview(scene: Path, labels: Path, mask: Path, classes, out: Path) -> Path:
    """RGB composite | reference | prediction, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import rasterio
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    from rs_vit.io.atomic import atomic_path

    with rasterio.open(scene) as src:
        names = [d.lower() if d else "" for d in src.descriptions]
        idx = [names.index(b) + 1 for b in ("red", "green", "blue")] if all(
            b in names for b in ("red", "green", "blue")) else [1, 1, 1]
        rgb = src.read(idx, out_shape=(3, src.height // 2, src.width // 2)).astype(np.float32)
        nd = src.nodata
    valid = ~np.all(rgb == nd, axis=0) if nd is not None else np.ones(rgb.shape[1:], bool)
    lo, hi = np.percentile(rgb[:, valid], [2, 98])  # one stretch for all bands keeps the hues
    rgb = np.clip((rgb - lo) / max(hi - lo, 1e-6), 0, 1).transpose(1, 2, 0)
    rgb[~valid] = 1.0
    colors = [np.array(c.color) / 255 if c.color else np.random.rand(3) for c in classes]
    cmap = ListedColormap(colors)
    fig = Figure(figsize=(12, 4.3), dpi=90)
    for i, (title, path) in enumerate([("Reference labels", labels), ("Prediction", mask)]):
        with rasterio.open(path) as src:
            arr = src.read(1, out_shape=(src.height // 2, src.width // 2)).astype(float)
            arr[arr == src.nodata] = np.nan
        ax = fig.add_subplot(1, 3, i + 2)
        ax.imshow(arr, cmap=cmap, vmin=-0.5, vmax=len(classes) - 0.5, interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    ax = fig.add_subplot(1, 3, 1)
    ax.imshow(rgb)
    ax.set_title("Scene (RGB composite)")
    ax.axis("off")
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=colors[i], label=c.name) for i, c in enumerate(classes)],
               loc="lower center", ncol=len(classes), frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    with atomic_path(out) as tmp:
        fig.savefig(tmp)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=SAMPLE / "demo.yaml")
    parser.add_argument("--out-dir", type=Path, default=None, help="run directory (default: runs/demo)")
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="override the config's steps")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    from rs_vit import predict_scene
    from rs_vit.config import load_config
    from rs_vit.evaluate.evaluator import evaluate_mask
    from rs_vit.evaluate.report import format_table, plot_confusion_matrix, write_json
    from rs_vit.train.loop import train

    overrides = {"train.overwrite": True, "train.epochs": args.epochs,
                 "train.steps_per_epoch": args.steps_per_epoch,
                 "train.out_dir": str(args.out_dir) if args.out_dir else None}
    cfg = load_config(args.config, overrides)
    scene = cfg.data.scenes[0]
    print("rs-vit demo: train -> predict -> evaluate on the bundled synthetic 6-band scene")
    print(f"  scene   {scene.image.relative_to(ROOT) if scene.image.is_relative_to(ROOT) else scene.image}")
    print(f"  model   {cfg.model.name}, trained from scratch (no pretrained weights are downloaded)")
    print(f"  budget  {cfg.train.epochs} epochs x {cfg.train.steps_per_epoch} steps x "
          f"{cfg.train.batch_size} windows of {cfg.train.tile_size} px; the bottom "
          f"{cfg.data.val_fraction:.0%} of the scene is held out\n")

    t0 = time.perf_counter()
    result = train(cfg, progress=not args.no_progress)
    t_train = time.perf_counter() - t0
    run = _show(result.run_dir)
    mask = run / "scene_mask.tif"
    print(f"\nPredicting the whole scene with 50 % overlapping, Hann-blended windows ...")
    pred = predict_scene(scene.image, mask, checkpoint=result.best_checkpoint, overlap=0.5,
                         blend="hann", tile_size=256, overwrite=True)
    print(f"  {pred.windows} windows in {pred.seconds:.1f} s ({pred.windows_per_second:.1f} windows/s)")

    reference = SAMPLE / "labels.gpkg"
    names = [c.name for c in cfg.data.classes]
    metrics = evaluate_mask(mask, reference, class_names=names, label_attribute="class_id")
    held = _held_out(mask, scene.labels, cfg, names)
    json_path = write_json({"whole_scene": metrics, "held_out_area": held}, run / "metrics.json")
    cm_png = plot_confusion_matrix(np.asarray(held["confusion_matrix"]), names, run / "confusion_matrix.png")
    preview = _preview(scene.image, scene.labels, mask, cfg.data.classes, run / "preview.png")

    print("\nHeld-out area (never seen in training), against labels.tif:")
    print(format_table(held))
    print(f"\nWhole scene against the vector labels (labels.gpkg, rasterised on the mask's grid): "
          f"mIoU {metrics['miou']:.4f}, overall accuracy {metrics['overall_accuracy']:.4f}")
    maj = max(held["per_class"], key=lambda c: c["support"])
    print(f"Majority-class baseline on the held-out area ('{maj['name']}' everywhere): "
          f"mIoU {_majority_miou(held):.4f}")
    print(f"\nDone in {time.perf_counter() - t0:.0f} s (training {t_train:.0f} s). Wrote:")
    for label, path in [("run directory", run), ("best checkpoint", run / "best"),
                        ("resolved config", run / "config.yaml"), ("metrics per epoch", run / "metrics.csv"),
                        ("class mask", mask), ("metrics JSON", json_path), ("confusion matrix", cm_png),
                        ("preview", preview)]:
        print(f"  {label:18s} {path}")
    print(f"\nNext: rs-vit predict sample_data/scene.tif --checkpoint {run / 'best'} --out my_mask.tif")
    return 0


def _show(path: Path) -> Path:
    """``path`` resolved, relative to the working directory when inside it (for printing)."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path.cwd())
    except ValueError:
        return p


def _held_out(mask: Path, labels: Path, cfg, names: list[str]) -> dict:
    """Metrics over the validation rows only (the area training never sampled)."""
    import rasterio
    from rasterio.windows import Window

    from rs_vit.evaluate.boundary import BoundaryF1
    from rs_vit.evaluate.metrics import ConfusionMatrix, compute_metrics

    with rasterio.open(mask) as m, rasterio.open(labels) as lab:
        H = m.height
        cut = int(round(H * (1.0 - cfg.data.val_fraction)))
        win = Window(0, cut, m.width, H - cut)
        p = m.read(1, window=win).astype(np.int64)
        r = lab.read(1, window=win).astype(np.int64)
        valid = p != m.nodata
    K = len(names)
    cm = ConfusionMatrix(K, ignore_index=cfg.data.ignore_index)
    cm.update(p, r, valid)
    bf = BoundaryF1(K, tolerance=2, ignore_index=cfg.data.ignore_index)
    bf.update(p, r, valid)
    return compute_metrics(cm.matrix, names, boundary=bf.compute(names))


def _majority_miou(metrics: dict) -> float:
    """mIoU of predicting the most frequent reference class everywhere (same classes averaged)."""
    sup = np.array([c["support"] for c in metrics["per_class"]], float)
    present = sup > 0
    k = int(np.argmax(sup))
    iou = np.zeros(len(sup))
    iou[k] = sup[k] / sup.sum()
    return float(iou[present].mean())


if __name__ == "__main__":
    raise SystemExit(main())
