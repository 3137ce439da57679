"""Benchmark: the sliding-window engine with PyTorch or ONNX Runtime doing the forward pass.

Same scene, same checkpoint, same engine (reader, blending, writer), same thread count; only the
model differs. Rows: PyTorch fp32, PyTorch bf16 autocast (the CPU default), ONNX Runtime fp32
and ONNX Runtime int8 (dynamic quantisation of MatMul/Gemm), plus fp16 where ONNX Runtime's CPU
provider can run it. Each configuration is loaded once, warmed up with one run, then timed for
``--rounds`` rounds, the configurations interleaved round by round (so a change in the machine's
load hits them all alike); the table gives the median windows/s and each row's mask agreement with
PyTorch fp32.

    python bench/bench_onnx.py                          # SegFormer-B0 (folded) and U-Net-R18, 512 px
    python bench/bench_onnx.py --models segformer_b0 --size 2048 --rounds 5 --threads 2

Checkpoints (random weights: speed does not depend on them), exports and the synthetic scene go
to ``--workdir`` (default /tmp/rs_vit_bench/onnx); results to ``bench/results/onnx.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BANDS = ["B2", "B3", "B4", "B8", "B11", "B12"]


def _scene(path: Path, size: int) -> Path:
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from _helpers_infer import make_scene

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        make_scene(path, size, size, bands=BANDS, nodata=0, block=512)
    return path


def _checkpoint(name: str, folder: Path, tile: int, classes: int) -> Path:
    import torch

    from rs_vit.io.bands import resolve_band_names
    from rs_vit.models.checkpoint import ModelSpec, read_spec, save_checkpoint
    from rs_vit.models.registry import create_model

    ck = folder / f"{name}_{tile}"
    if (ck / "rs_vit.json").is_file() and read_spec(ck).tile_size == tile:
        return ck
    bands = resolve_band_names(BANDS)
    torch.manual_seed(0)
    model = create_model(name, in_channels=len(bands), num_classes=classes, band_names=bands).eval()
    spec = ModelSpec(name=name, in_channels=len(bands), num_classes=classes, bands=bands,
                     mean=[1000.0] * len(bands), std=[400.0] * len(bands),
                     classes=[{"id": i, "name": f"c{i}", "color": None} for i in range(classes)],
                     tile_size=tile, nodata=0)
    return save_checkpoint(ck, model, spec)


def _export(ck: Path, out: Path, source: Path | None = None, **kw: Any) -> tuple[Path | None, dict[str, Any]]:
    """Export ``ck`` (float32), or convert the float32 ``source`` export (fp16 / int8)."""
    from rs_vit.models.export import convert_onnx, export_onnx

    if out.is_file():
        return out, {"export_seconds": None}
    try:
        r = convert_onnx(source, out, overwrite=True, **kw) if kw else export_onnx(ck, out, overwrite=True)
    except Exception as exc:  # record why (e.g. fp16 kernels missing on the CPU)
        return None, {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    return out, {"export_seconds": round(r.seconds, 1), "checks": r.checks, "size_mb": round(r.size_bytes / 1e6, 2)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import rasterio
    import torch

    from rs_vit.infer.engine import SlidingWindowPredictor, predict_scene
    from rs_vit.infer.onnx_backend import load_onnx_model
    from rs_vit.models.checkpoint import load_model

    torch.set_num_threads(args.threads)
    work = Path(args.workdir)
    scene = _scene(work / f"scene_{args.size}.tif", args.size)
    rows: list[dict[str, Any]] = []
    for name in args.models:
        ck = _checkpoint(name, work, args.tile, args.classes)
        configs: dict[str, Any] = {}
        model, spec = load_model(ck)
        common = {"tile_size": args.tile, "batch_size": args.batch_size, "device": "cpu"}
        configs["torch fp32"] = (SlidingWindowPredictor(model, spec, precision="fp32", **common), {})
        configs["torch bf16 autocast"] = (SlidingWindowPredictor(model, spec, precision="bf16", **common), {})
        fp32, _ = _export(ck, work / f"{name}_{args.tile}_fp32.onnx")
        for label, kw in (("onnxruntime fp32", {}), ("onnxruntime int8", {"quantize": "int8"}),
                          ("onnxruntime fp16", {"fp16": True})):
            tag = label.split()[-1]
            path, info = _export(ck, work / f"{name}_{args.tile}_{tag}.onnx", source=fp32, **kw)
            if path is None:
                rows.append({"model": name, "backend": label, **info})
                continue
            try:
                om, ospec = load_onnx_model(path, threads=args.threads)
                configs[label] = (SlidingWindowPredictor(om, ospec, **common), info)
                om.session  # noqa: B018  (create it now: fp16 may not load on the CPU)
            except Exception as exc:
                configs.pop(label, None)
                rows.append({"model": name, "backend": label, **info,
                             "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"})
        times: dict[str, list[float]] = {k: [] for k in configs}
        masks: dict[str, np.ndarray] = {}
        windows = 0
        for rnd in range(args.rounds + 1):  # round 0 warms up (first batches, allocator, caches)
            for label, (pred, _) in configs.items():
                out = work / f"mask_{name}_{label.replace(' ', '_')}.tif"
                r = predict_scene(scene, out, predictor=pred, overwrite=True)
                windows = r.windows + r.windows_skipped
                if rnd == 0:
                    with rasterio.open(out) as src:
                        masks[label] = src.read(1)
                else:
                    times[label].append(r.seconds)
                print(f"{name} {label} round {rnd}: {r.seconds:.2f}s", flush=True)
        ref = masks["torch fp32"]
        for label, (pred, info) in configs.items():
            med = statistics.median(times[label])
            rows.append({"model": name, "backend": label, "windows": windows, "median_s": round(med, 3),
                         "windows_per_s": round(windows / med, 3), "rounds_s": [round(t, 2) for t in times[label]],
                         "mask_agreement_vs_torch_fp32": float((masks[label] == ref).mean()),
                         "engine": pred.describe(), **info})
    import onnxruntime

    return {"conditions": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                           "threads": args.threads, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                           "scene": f"{args.size} x {args.size} px, {len(BANDS)} bands uint16 (synthetic)",
                           "tile": args.tile, "overlap": 0.25, "batch": args.batch_size, "classes": args.classes,
                           "rounds": args.rounds, "load_average_end": os.getloadavg()},
            "rows": rows}


def table(res: dict[str, Any]) -> str:
    lines = ["| model | backend | windows/s (median) | rounds (s) | mask = torch fp32 |",
             "| --- | --- | ---: | --- | ---: |"]
    for r in res["rows"]:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['backend']} | — | {r['error']} | — |")
            continue
        lines.append(f"| {r['model']} | {r['backend']} | {r['windows_per_s']:.2f} | "
                     f"{', '.join(f'{t:.1f}' for t in r['rounds_s'])} | {r['mask_agreement_vs_torch_fp32']:.2%} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["segformer_b0", "unet_resnet18"])
    ap.add_argument("--size", type=int, default=1536, help="scene width = height (px)")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/rs_vit_bench/onnx")
    args = ap.parse_args()
    t0 = time.time()
    res = run(args)
    res["conditions"]["wall_s"] = round(time.time() - t0, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "onnx.json").write_text(json.dumps(res, indent=2, default=str))
    print(json.dumps(res["conditions"], default=str))
    print(table(res))


if __name__ == "__main__":
    main()
