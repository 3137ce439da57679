"""``rs-vit export``: a checkpoint as a self-describing ONNX file for ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rs_vit.cli.app import app, echo, handle_errors


@app.command("export")
@handle_errors
def export_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint folder (e.g. runs/x/best), or a float32 .onnx "
                                            "export to convert with --fp16 / --quantize int8.")],
    onnx: Annotated[Path, typer.Option("--onnx", help="ONNX file to write (its description also goes to <file>.json).")],
    opset: Annotated[int, typer.Option(help="ONNX opset (17 or 18 suit current ONNX Runtime).")] = 18,
    dynamic: Annotated[bool, typer.Option(help="Keep tile height and width dynamic where the model allows "
                                          "(the batch is always dynamic).")] = True,
    tile_size: Annotated[int | None, typer.Option(help="Tile traced, and the only one a fixed-size export accepts "
                                                  "(default: the checkpoint's).")] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Float16 weights and activations (inputs and outputs "
                                       "stay float32); meant for GPU providers.")] = False,
    quantize: Annotated[str | None, typer.Option(help="int8: ONNX Runtime dynamic quantisation of the "
                                                 "MatMul/Gemm weights.")] = None,
    verify: Annotated[bool, typer.Option(help="Compare ONNX Runtime's probabilities with PyTorch's "
                                         "before writing.")] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """Export a checkpoint to ONNX (evaluation form, dynamic batch and tile size where the model
    allows), with bands, normalisation, nodata, classes, tile rule and the source's SHA-256 in its
    metadata; `rs-vit predict --checkpoint model.onnx` runs it with ONNX Runtime."""
    from rs_vit.models.export import export_onnx

    r = export_onnx(checkpoint, onnx, opset=opset, dynamic=dynamic, fp16=fp16, quantize=quantize,
                    tile_size=tile_size, verify=verify, overwrite=overwrite)
    meta = r.metadata
    checked = ""
    if r.checks:
        done = [c for c in r.checks if c.get("max_abs_prob_diff") is not None]
        if done:
            checked = (f"; ONNX Runtime vs PyTorch: max. probability difference {r.max_abs_diff:.2g}, "
                       f"argmax agreement {min(c['argmax_agreement'] for c in done):.4%} at tiles "
                       f"{', '.join(str(c['tile']) for c in done)}")
        else:
            checked = f"; not checked here: {r.checks[0]['not_checked']}"
    echo(f"Exported {meta['source']['model']} -> {r.path} ({r.size_bytes / 1e6:.1f} MB, "
         f"{meta['export']['precision']}, opset {meta['export']['opset']}, tiles: {meta['tile']['rule']}){checked}; "
         f"{r.seconds:.1f}s. Description: {r.sidecar}")
    for note in meta["export"].get("notes", []):
        echo(f"Note: {note}")
