"""Benchmark of ``rs-vit predict``: throughput, engine overhead, memory, seam quality.

Reproducible; every measurement runs in a fresh child process (peak RSS is the child's
``ru_maxrss``). Results are printed and written as JSON under ``bench/results/`` (git-ignored).

    python bench/bench_predict.py throughput --width 10980 --height 1536 --bands 13 --classes 10
    python bench/bench_predict.py memory --width 10980 --heights 1024 4096 --models segformer_b0
    python bench/bench_predict.py seams            # ukis-csmask on the Sen1Floods11 S2 chip
    python bench/bench_predict.py seams --checkpoint /tmp/rs_vit_bench/seams_cnn/last \
        --scene sample_data/scene.tif --labels sample_data/labels.tif --threads 1 --tag cnn
                                                   # a CNN trained by bench/seams_cnn.yaml
    python bench/bench_predict.py all

Sizes are parameters: ``--width 10980 --height 10980`` runs a whole Sentinel-2 tile (841 windows
of 512 px at 25 % overlap; generating the ~1.5 GB synthetic scene alone takes minutes). Synthetic scenes are written to ``--workdir``
(default /tmp/rs_vit_bench), never into the repository.

``seams`` compares tiled prediction with one forward pass of the whole image (pixels that are
not nodata) for tile sizes, overlaps, blend weights and TTA; ``--seam-tiles 256 128 512`` runs
every blend x overlap {0, 0.25, 0.5} at 256 px and Hann at 128 / 512 px. With ``--labels`` each
row also gets its mIoU (held-out bottom ``--heldout-fraction`` of the rows, and whole scene).
Rows are appended to ``bench/results/seams_rows[_TAG].jsonl`` as they finish.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SHARED = ROOT.parent / "shared" / "data"
S2_BANDS = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
UKIS = SHARED / "ukis_csmask"
S2_CHIP = SHARED / "sen1floods11" / "Spain_7370579_S2Hand.tif"


# -- scenes and models -------------------------------------------------------------------------
def make_scene(path: Path, width: int, height: int, bands: int, *, seed: int = 0) -> Path:
    """A synthetic Sentinel-2-like uint16 DEFLATE tiled GeoTIFF (smooth fields + noise),
    written block row by block row (bounded memory)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.tif")
    rng = np.random.default_rng(seed)
    names = S2_BANDS[:bands] if bands <= 13 else [f"b{i}" for i in range(bands)]
    prof = {"driver": "GTiff", "width": width, "height": height, "count": bands, "dtype": "uint16",
            "crs": "EPSG:32633", "transform": from_origin(300000, 5000000, 10, 10), "nodata": 0,
            "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate",
            "predictor": 2, "interleave": "pixel", "BIGTIFF": "IF_SAFER"}
    xx = np.arange(width, dtype=np.float32)
    with rasterio.open(tmp, "w", **prof) as dst:
        for i, n in enumerate(names, start=1):
            dst.set_band_description(i, n)
        for r0 in range(0, height, 512):
            h = min(512, height - r0)
            yy = np.arange(r0, r0 + h, dtype=np.float32)[:, None]
            block = np.empty((bands, h, width), dtype=np.uint16)
            for b in range(bands):
                f = 1500 + 800 * np.sin(xx / (90 + 7 * b)) * np.cos(yy / (70 + 5 * b))
                block[b] = np.clip(f + rng.normal(0, 60, (h, width)), 1, 20000).astype(np.uint16)
            dst.write(block, window=Window(0, r0, width, h))
    os.replace(tmp, path)
    return path


def build(model: str, bands: int, classes: int, tile: int):
    """(model, spec) for a registry model or the ukis-csmask U-Net (real weights)."""
    import torch

    from rs_vit.models.checkpoint import ModelSpec
    from rs_vit.models.registry import create_model

    if model == "ukis_csmask":
        return ukis_model()
    names = S2_BANDS[:bands] if bands <= 13 else [f"b{i}" for i in range(bands)]
    from rs_vit.io.bands import resolve_band_names

    canon = resolve_band_names(names, source="bench")
    torch.manual_seed(0)
    extra: dict[str, Any] = {}
    if model == "pointwise":  # a 1x1 convolution: isolates the engine (I/O, blending, writing)
        net = torch.nn.Conv2d(bands, classes, 1)
        extra = {"tile_multiple": 32}
    else:  # "<name>:stock" = the registry model with smp's stock decoder forward (for comparison)
        net = create_model(model.split(":")[0], in_channels=bands, num_classes=classes)
        if model.endswith(":stock"):
            from segmentation_models_pytorch.decoders.segformer.decoder import SegformerDecoder

            for m in net.modules():
                if isinstance(m, SegformerDecoder):
                    m.__class__ = SegformerDecoder
    spec = ModelSpec(extra=extra, name=model, in_channels=bands, num_classes=classes, bands=canon,
                     mean=[1500.0] * bands, std=[600.0] * bands,
                     classes=[{"name": f"class{i}"} for i in range(classes)], tile_size=tile)
    return net, spec


def ukis_model():
    """The ukis-csmask cloud/shadow U-Net (EfficientNet-B4, 6 bands) with its statistics."""
    import segmentation_models_pytorch as smp
    from safetensors.torch import load_file

    from rs_vit.models.checkpoint import ModelSpec

    meta = json.loads((UKIS / "model_6b_l1c.json").read_text())
    stats = meta["data"]["dataset_statistics"]
    net = smp.Unet("efficientnet-b4", encoder_weights=None, in_channels=6, classes=3)
    state = {k: v.float() for k, v in load_file(str(UKIS / "ukis_csmask_6b_l1c_smp_unet_effb4_fp16.safetensors")).items()}
    net.load_state_dict(state, strict=False)
    net.eval()
    spec = ModelSpec(
        name="ukis_csmask_unet_effb4", in_channels=6, num_classes=3, bands=stats["band_names"],
        mean=[m * 10000 for m in stats["img"][0]], std=[s * 10000 for s in stats["img"][1]],
        classes=[{"name": "clear", "color": [0, 160, 0]}, {"name": "cloud", "color": [255, 255, 255]},
                 {"name": "cloud_shadow", "color": [90, 90, 90]}],
        tile_size=256, nodata=0, extra={"tile_multiple": 32})
    return net, spec


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- child measurements ------------------------------------------------------------------------
def _predictor(a: dict[str, Any]):
    import torch

    from rs_vit.infer.engine import SlidingWindowPredictor

    torch.set_num_threads(a["threads"])
    net, spec = build(a["model"], a["bands"], a["classes"], a["tile"])
    pred = SlidingWindowPredictor(net, spec, tile_size=a["tile"], overlap=a["overlap"], blend=a["blend"],
                                  batch_size=a["batch"], device="cpu", precision=a["precision"],
                                  compile=a.get("compile", False))
    # warm-up: one batch through the model (allocator, oneDNN kernels)
    warm = np.zeros((a["batch"], spec.in_channels, a["tile"], a["tile"]), np.float32)
    pred.predict_batch(warm + np.asarray(spec.mean, np.float32)[:, None, None])
    return pred, spec


def child_predict(a: dict[str, Any]) -> dict[str, Any]:
    """End-to-end ``predict_scene`` on a scene file (peak RSS = this process's), then, with
    ``read``, the reader alone over the same grid (CPU time per window)."""
    import rasterio

    from rs_vit.infer.engine import predict_scene
    from rs_vit.io.windows import make_grid
    from rs_vit.infer.reader import UnitReader
    from rs_vit.io.bands import match_bands
    from rs_vit.io.raster import scene_info

    pred, spec = _predictor(a)
    rss_model = rss_mb()
    out = Path(a["out"])
    c0 = time.process_time()
    r = predict_scene(a["scene"], out, predictor=pred, overwrite=True, cog=a.get("cog", False))
    cpu_e2e = time.process_time() - c0
    res: dict[str, Any] = {"windows": r.windows, "skipped": r.windows_skipped, "seconds": r.seconds,
                           "windows_per_s": r.windows_per_second, "mp_per_s": r.megapixels_per_second,
                           "peak_rss_mb": rss_mb(), "rss_after_model_mb": rss_model,
                           "engine": pred.describe(), "width": r.width, "height": r.height,
                           "e2e_s_per_window": r.seconds / max(1, r.windows),
                           "cpu_s_per_window_e2e": cpu_e2e / max(1, r.windows), "load_avg": os.getloadavg()[0]}
    out.unlink(missing_ok=True)
    if a.get("read", False):
        info = scene_info(a["scene"])
        idx = match_bands(info.band_names, spec.bands)
        with rasterio.Env(GDAL_NUM_THREADS="1"), rasterio.open(a["scene"]) as src:
            grid = make_grid(r.height, r.width, a["tile"], a["overlap"])
            c0 = time.process_time()
            n = sum(1 for _ in UnitReader(src, idx, 0, grid, a["tile"], max_unit_width=pred.max_read_width))
            res["read_cpu_s_per_window"] = (time.process_time() - c0) / max(1, n)
    return res


def child_pure(a: dict[str, Any]) -> dict[str, Any]:
    """The same model on the scene's first windows, same precision and batch size, tensors
    already in memory: forward + softmax only (no I/O, no blending)."""
    import rasterio
    import torch
    from rasterio.windows import Window

    from rs_vit.io.windows import make_grid
    from rs_vit.io.bands import match_bands
    from rs_vit.io.raster import scene_info

    pred, spec = _predictor(a)
    info = scene_info(a["scene"])
    idx = [i + 1 for i in match_bands(info.band_names, spec.bands)]
    grid = [w for row in make_grid(info.height, info.width, a["tile"], a["overlap"]) for w in row]
    n = min(len(grid), a.get("pure_windows", 48))
    with rasterio.open(a["scene"]) as src:
        wins = np.stack([src.read(idx, window=Window(c, rr, a["tile"], a["tile"]), boundless=True)
                         for rr, c in grid[:n]]).astype(np.float32)
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    xs = [((torch.from_numpy(wins[i:i + a["batch"]]) - mean) / std) for i in range(0, n, a["batch"])]
    with torch.inference_mode():
        pred._probs(xs[0])
        t0, c0 = time.perf_counter(), time.process_time()
        for x in xs:
            pred._probs(x)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"pure_windows": n, "pure_s_per_window": dt / n, "cpu_s_per_window_pure": cpu / n}


def _seam_model(a: dict[str, Any]):
    """(model, spec, scene path) of a seam run: an rs-vit checkpoint on ``a["scene"]``, or
    the ukis-csmask U-Net on the Sen1Floods11 S2 chip."""
    if a.get("checkpoint"):
        from rs_vit.models.checkpoint import load_model

        net, spec = load_model(a["checkpoint"], device="cpu")
        return net, spec, Path(a["scene"])
    net, spec = ukis_model()
    return net, spec, Path(a.get("scene") or S2_CHIP)


def child_seams(a: dict[str, Any]) -> dict[str, Any]:
    """Disagreement of tiled vs whole-image prediction (one forward pass of the whole scene),
    per tile / overlap / blend / TTA; with ``labels``, also each prediction's mIoU."""
    import rasterio
    import torch

    from rs_vit.evaluate import ConfusionMatrix, compute_metrics
    from rs_vit.infer.engine import SlidingWindowPredictor, argmax_classes
    from rs_vit.io.bands import match_bands
    from rs_vit.io.raster import invalid_mask, scene_info

    torch.set_num_threads(a["threads"])
    net, spec, scene = _seam_model(a)
    K = spec.num_classes
    info = scene_info(scene)
    idx = match_bands(info.band_names, spec.bands)
    nodata = info.nodata if info.nodata is not None else (spec.nodata if spec.nodata is not None else 0)
    with rasterio.open(scene) as src:
        raw = src.read([i + 1 for i in idx]).astype(np.float32)
    invalid = invalid_mask(raw, nodata)
    m = ~invalid
    labels = heldout = None
    if a.get("labels"):
        with rasterio.open(a["labels"]) as src:
            labels = src.read(1).astype(np.int64)
            if src.nodata is not None:
                labels[labels == int(src.nodata)] = spec.ignore_index
        heldout = int(round(raw.shape[1] * (1.0 - a.get("heldout_fraction", 0.25))))

    def miou(pred: np.ndarray, rows: slice) -> float | None:
        cm = ConfusionMatrix(K, ignore_index=spec.ignore_index)
        cm.update(pred[rows], labels[rows], m[rows])  # type: ignore[index]
        return compute_metrics(cm.matrix, spec.class_names)["miou"]

    def scores(pred: np.ndarray) -> dict[str, Any]:
        if labels is None:
            return {}
        return {"miou_heldout": miou(pred, slice(heldout, None)), "miou_scene": miou(pred, slice(None))}

    prec = a["precision"]
    whole = SlidingWindowPredictor(net, spec, tile_size=raw.shape[1], overlap=0, blend="uniform",
                                   device="cpu", precision=prec, batch_size=1)
    t0 = time.perf_counter()
    ref = whole.predict_batch(raw[None], torch.from_numpy(invalid)[None])[0].numpy().argmax(0)
    t_whole = time.perf_counter() - t0
    head = {"whole_seconds": t_whole, "classes_whole": np.bincount(ref.ravel(), minlength=K).tolist(),
            "invalid_pixels": int(invalid.sum()), "scene": str(scene), "model": spec.name,
            "size": list(raw.shape[1:]), "heldout_from_row": heldout, **scores(ref)}
    with open(a["rows_file"], "a") as fh:
        fh.write(json.dumps(head) + "\n")
    rows = []
    for cfg in a["configs"]:
        p = SlidingWindowPredictor(net, spec, tile_size=cfg["tile"], overlap=cfg["overlap"], blend=cfg["blend"],
                                   device="cpu", precision=prec, batch_size=4, tta=cfg.get("tta", "none"))
        got = np.zeros(ref.shape, np.int64)

        def write_rows(r0: int, probs: np.ndarray, valid: np.ndarray, got: np.ndarray = got) -> None:
            got[r0:r0 + probs.shape[1]] = argmax_classes(probs)

        with rasterio.open(scene) as src:
            t0 = time.perf_counter()
            ran, _ = p.run(src, idx, nodata, write_rows)
            dt = time.perf_counter() - t0
        rows.append({**cfg, "windows": ran, "seconds": dt,
                     "disagreement": float((got[m] != ref[m]).mean()), "precision": prec, **scores(got)})
        with open(a["rows_file"], "a") as fh:  # partial results survive an interrupted run
            fh.write(json.dumps(rows[-1]) + "\n")
    return {**head, "rows": rows}


def run_child(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    env.setdefault("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
    cp = subprocess.run([sys.executable, __file__, "_child", kind, json.dumps(args)], capture_output=True,
                        text=True, env=env)
    if cp.returncode:
        raise SystemExit(f"child failed:\n{cp.stderr[-4000:]}")
    return json.loads(cp.stdout.strip().splitlines()[-1])


# -- commands ----------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    import torch

    from rs_vit.device import cpu_supports_bf16

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch": torch.__version__, "bf16": cpu_supports_bf16(), "cuda": torch.cuda.is_available(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def cmd_throughput(ns: argparse.Namespace) -> list[dict[str, Any]]:
    scene = Path(ns.scene) if ns.scene else make_scene(
        Path(ns.workdir) / f"scene_{ns.width}x{ns.height}x{ns.bands}.tif", ns.width, ns.height, ns.bands)
    out = []
    for model in ns.models:
        for prec in ns.precisions:
            a = {"model": model, "bands": ns.bands, "classes": ns.classes, "tile": ns.tile,
                 "overlap": ns.overlap, "blend": ns.blend, "batch": ns.batch, "precision": prec,
                 "threads": ns.threads, "scene": str(scene), "out": str(Path(ns.workdir) / "out_mask.tif"),
                 "pure_windows": ns.pure_windows, "compile": ns.compile, "rounds": ns.rounds}
            # pure model before and after every end-to-end run, each in its own process (the
            # host's speed drifts; the end-to-end peak RSS is not inflated by the pure windows)
            pures = [run_child("pure", a)]
            runs = []
            for k in range(ns.rounds):
                runs.append(run_child("predict", {**a, "read": k == 0}))
                pures.append(run_child("pure", a))
            pw = [(pures[k]["pure_s_per_window"] + pures[k + 1]["pure_s_per_window"]) / 2 for k in range(len(runs))]
            pc = [(pures[k]["cpu_s_per_window_pure"] + pures[k + 1]["cpu_s_per_window_pure"]) / 2 for k in range(len(runs))]
            ratios = [e["e2e_s_per_window"] / p for e, p in zip(runs, pw)]
            k = int(np.argsort(ratios)[len(ratios) // 2])  # the median round
            r = {**a, **runs[k], "pure_s_per_window": pw[k], "cpu_s_per_window_pure": pc[k],
                 "overhead_ratio": ratios[k], "cpu_overhead_ratio": runs[k]["cpu_s_per_window_e2e"] / pc[k],
                 "overhead_ratios": ratios, "rounds": len(runs), "pure_windows": pures[0]["pure_windows"],
                 "pure_runs_s_per_window": [p["pure_s_per_window"] for p in pures],
                 "e2e_runs_s_per_window": [e["e2e_s_per_window"] for e in runs],
                 "peak_rss_mb": max(e["peak_rss_mb"] for e in runs),
                 "read_cpu_s_per_window": runs[0]["read_cpu_s_per_window"]}
            print(f"{model:24s} {prec:5s} {r['windows']:5d} win  {r['windows_per_s']:6.2f} win/s  "
                  f"{r['mp_per_s']:6.3f} MP/s  pure {r['pure_s_per_window'] * 1e3:6.1f} ms/win  e2e "
                  f"{r['e2e_s_per_window'] * 1e3:6.1f} ms/win  overhead x{r['overhead_ratio']:.3f} (CPU time "
                  f"x{r['cpu_overhead_ratio']:.3f})  read {r['read_cpu_s_per_window'] * 1e3:.1f} ms CPU/win  "
                  f"load {r['load_avg']:.1f}  rounds {r['rounds']} (ratios "
                  f"{', '.join(f'{x:.3f}' for x in r['overhead_ratios'])})  "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
            out.append(r)
    return out


def cmd_memory(ns: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for h in ns.heights:
        scene = make_scene(Path(ns.workdir) / f"scene_{ns.width}x{h}x{ns.bands}.tif", ns.width, h, ns.bands)
        a = {"model": ns.models[0], "bands": ns.bands, "classes": ns.classes, "tile": ns.tile,
             "overlap": ns.overlap, "blend": ns.blend, "batch": ns.batch, "precision": ns.precisions[0],
             "threads": ns.threads, "scene": str(scene), "out": str(Path(ns.workdir) / "out_mask.tif"),
             "pure": False}
        r = {**a, **run_child("predict", a)}
        print(f"{ns.width}x{h}x{ns.bands} {ns.classes} classes: {r['windows']} windows in {r['seconds']:.1f}s, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB (after model load {r['rss_after_model_mb']:.0f} MB)", flush=True)
        out.append(r)
    return out


def seam_configs(quick: bool, tiles: list[int] | None = None) -> list[dict[str, Any]]:
    """The seam grid. Without ``tiles`` (the ukis case): blends × overlaps at 256 px (most
    informative first), then tile size, TTA and 75 % overlap. With ``tiles``: every blend ×
    overlap {0, 25, 50 %} at ``tiles[0]``, then Hann at 0 / 25 / 50 % for each other tile size
    (the tile-size lever); ``quick`` keeps only the first tile."""
    from rs_vit.infer.blend import BLENDS

    def c(ov: float, b: str, tile: int = 256, tta: str = "none") -> dict[str, Any]:
        return {"tile": tile, "overlap": ov, "blend": b, "tta": tta}

    if tiles:
        cfgs = [c(ov, b, tiles[0]) for ov in (0.0, 0.25, 0.5) for b in BLENDS]
        if not quick:
            cfgs += [c(ov, "hann", t) for t in tiles[1:] for ov in (0.0, 0.25, 0.5)]
        return cfgs
    cfgs = [c(0.0, "uniform"), c(0.5, "hann"), c(0.5, "uniform"), c(0.5, "crop"), c(0.5, "gaussian"),
            c(0.25, "hann"), c(0.25, "uniform"), c(0.5, "triangular"), c(0.5, "spline"), c(0.25, "crop"),
            c(0.25, "gaussian"), c(0.25, "triangular"), c(0.25, "spline")]
    if not quick:
        cfgs += [c(0.0, "uniform", 384), c(0.5, "hann", 384), c(0.5, "hann", tta="flip"),
                 c(0.0, "uniform", tta="d4"), c(0.5, "hann", tta="d4"), c(0.75, "hann"), c(0.75, "gaussian")]
    return cfgs


def cmd_seams(ns: argparse.Namespace) -> dict[str, Any]:
    tiles = ns.seam_tiles
    if ns.checkpoint:
        from rs_vit.io.raster import scene_info
        from rs_vit.models.checkpoint import read_spec

        if not ns.scene:
            raise SystemExit("seams --checkpoint needs --scene (a GeoTIFF with the checkpoint's bands).")
        if not tiles:  # the training tile, half and double of it (where the scene holds it)
            t = read_spec(ns.checkpoint).tile_size
            info = scene_info(ns.scene)
            tiles = [t] + [x for x in (t // 2, 2 * t) if x <= min(info.height, info.width)]
    elif not (UKIS.is_dir() and S2_CHIP.is_file()):
        raise SystemExit(f"seams needs {UKIS} and {S2_CHIP} (../shared/data), or --checkpoint and --scene; not found.")
    rows_file = RESULTS / f"seams_rows{('_' + ns.tag) if ns.tag else ''}.jsonl"
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows_file.unlink(missing_ok=True)
    a = {"threads": ns.threads, "precision": ns.seam_precision, "configs": seam_configs(ns.quick, tiles),
         "rows_file": str(rows_file), "checkpoint": ns.checkpoint,
         "scene": str(Path(ns.scene).resolve()) if ns.checkpoint else None,
         "labels": str(Path(ns.labels).resolve()) if ns.labels else None,
         "heldout_fraction": ns.heldout_fraction}
    r = run_child("seams", a)
    h, w = r["size"]
    miou = "miou_heldout" in r
    print(f"{r['model']} on {Path(r['scene']).name}, whole {w}x{h} image: {r['whole_seconds']:.2f}s, "
          f"classes {r['classes_whole']}"
          + (f", mIoU held-out {r['miou_heldout']:.4f} scene {r['miou_scene']:.4f}" if miou else ""))
    print(f"{'tile':>4} {'overlap':>7} {'blend':>10} {'tta':>5} {'windows':>7} {'seconds':>7} {'disagree %':>10}"
          + (f" {'mIoU held':>9} {'mIoU all':>8}" if miou else ""))
    for row in r["rows"]:
        print(f"{row['tile']:4d} {row['overlap']:7.2f} {row['blend']:>10} {row.get('tta', 'none'):>5} "
              f"{row['windows']:7d} {row['seconds']:7.2f} {100 * row['disagreement']:10.2f}"
              + (f" {row['miou_heldout']:9.4f} {row['miou_scene']:8.4f}" if miou else ""))
    return r


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        sys.path.insert(0, str(ROOT))
        fn = {"predict": child_predict, "pure": child_pure, "seams": child_seams}[sys.argv[2]]
        print(json.dumps(fn(json.loads(sys.argv[3]))))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["throughput", "memory", "seams", "all"])
    ap.add_argument("--scene", help="use this GeoTIFF instead of a synthetic scene (throughput); "
                    "the scene of seams --checkpoint")
    ap.add_argument("--width", type=int, default=10980)
    ap.add_argument("--height", type=int, default=1536)
    ap.add_argument("--heights", type=int, nargs=2, default=[1024, 4096])
    ap.add_argument("--bands", type=int, default=13)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--models", nargs="+", default=["segformer_b0", "segformer_b2"],
                    help="registry names (append ':stock' for smp's stock SegFormer decoder), 'ukis_csmask' "
                         "(real weights) or 'pointwise' (engine only)")
    ap.add_argument("--precisions", nargs="+", default=["bf16"])
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--overlap", type=float, default=0.25)
    ap.add_argument("--blend", default="hann")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pure-windows", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=1,
                    help="throughput: end-to-end runs, each between two pure-model runs; the median "
                         "round's ratio is reported (the host's speed drifts)")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--seam-precision", default="bf16")
    ap.add_argument("--quick", action="store_true", help="seams: blends x overlaps only")
    ap.add_argument("--checkpoint", help="seams: an rs-vit checkpoint folder (default: ukis-csmask "
                    "on the Sen1Floods11 S2 chip); needs --scene")
    ap.add_argument("--labels", help="seams: label raster on the scene grid; adds each row's mIoU")
    ap.add_argument("--heldout-fraction", type=float, default=0.25,
                    help="seams: bottom share of the rows not trained on (mIoU held-out; the run's val_fraction)")
    ap.add_argument("--seam-tiles", type=int, nargs="+",
                    help="seams: tile sizes; every blend x overlap {0, 0.25, 0.5} at the first, Hann at the "
                    "others (default with --checkpoint: its tile, half and double it)")
    ap.add_argument("--workdir", default="/tmp/rs_vit_bench")
    ap.add_argument("--tag", default="", help="suffix for the results file")
    ns = ap.parse_args()
    res: dict[str, Any] = {"machine": machine(), "args": vars(ns)}
    cmds = ["throughput", "memory", "seams"] if ns.command == "all" else [ns.command]
    for c in cmds:
        res[c] = {"throughput": cmd_throughput, "memory": cmd_memory, "seams": cmd_seams}[c](ns)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"predict_{ns.command}{('_' + ns.tag) if ns.tag else ''}.json"
    path.write_text(json.dumps(res, indent=2, default=str))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
