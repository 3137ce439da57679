"""``rs-vit evaluate``: compare a predicted mask with reference labels, or run a checkpoint on a
training config's validation split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rs_vit.cli.app import app, echo, handle_errors

REF = "Reference labels"
CKPT = "Checkpoint on a validation split"
OUT = "Outputs"


@app.command("evaluate")
@handle_errors
def evaluate_cmd(
    prediction: Annotated[Path | None, typer.Argument(help="Predicted class mask GeoTIFF (omit with --checkpoint).")] = None,
    reference: Annotated[Path | None, typer.Argument(help="Reference labels: raster on the mask's grid, or vector file (reprojected and rasterised).")] = None,
    reference_opt: Annotated[Path | None, typer.Option("--reference", "-r", help="Reference labels (same as the second argument).", rich_help_panel=REF)] = None,
    classes: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="YAML with classes: [{id, name, color}] (default: names stored in the mask).", rich_help_panel=REF)] = None,
    num_classes: Annotated[int | None, typer.Option(help="Number of classes when the mask carries no names and no --classes is given.", rich_help_panel=REF)] = None,
    label_attribute: Annotated[str, typer.Option(help="Vector attribute holding the class id.", rich_help_panel=REF)] = "class_id",
    ignore_index: Annotated[int, typer.Option(help="Reference value meaning 'no label'.", rich_help_panel=REF)] = 255,
    ignore_values: Annotated[str | None, typer.Option(help="Comma-separated reference values to exclude (e.g. -1), as in rs-vit train.", rich_help_panel=REF)] = None,
    ignore_value: Annotated[list[int] | None, typer.Option("--ignore-value", hidden=True, help="Old spelling of --ignore-values (repeatable).")] = None,
    background: Annotated[int | None, typer.Option(help="Class of pixels no vector polygon covers (default: ignored).", rich_help_panel=REF)] = None,
    rows: Annotated[str | None, typer.Option(help="Evaluate only rows FIRST:END of the mask (e.g. a validation split).", rich_help_panel=REF)] = None,
    checkpoint: Annotated[Path | None, typer.Option("--checkpoint", "-k", help="Run this checkpoint on the validation split of its training config instead of reading a mask.", rich_help_panel=CKPT)] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", exists=True, dir_okay=False, help="Training config whose scenes' validation split is predicted (default: the checkpoint's config.yaml).", rich_help_panel=CKPT)] = None,
    overlap: Annotated[float | None, typer.Option(help="Window overlap for --checkpoint: fraction (<1) or pixels (default: rs-vit predict's).", rich_help_panel=CKPT)] = None,
    blend: Annotated[str | None, typer.Option(help="Blend weights for --checkpoint: hann, gaussian, triangular, spline, uniform or crop (default: rs-vit predict's).", rich_help_panel=CKPT)] = None,
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass (--checkpoint).", rich_help_panel=CKPT)] = 4,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (--checkpoint).", rich_help_panel=CKPT)] = "auto",
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16 (--checkpoint).", rich_help_panel=CKPT)] = "auto",
    tolerance: Annotated[float, typer.Option(help="Boundary F1 tolerance in pixels.")] = 2.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics as JSON here.", rich_help_panel=OUT)] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a confusion-matrix PNG here.", rich_help_panel=OUT)] = None,
    error_map: Annotated[Path | None, typer.Option(help="Write an error-map GeoTIFF here (0 ignored, 1 correct, 2 wrong); with --checkpoint a folder for <scene>_errors.tif.", rich_help_panel=OUT)] = None,
    per_window: Annotated[bool, typer.Option(help="Add an error map (default <mask>_errors.tif) and a per-window accuracy CSV (<mask>_windows.csv).", rich_help_panel=OUT)] = False,
    window_size: Annotated[int, typer.Option(help="Window size in pixels for --per-window.", rich_help_panel=OUT)] = 256,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs (JSON, plot, error map, window CSV).")] = False,
) -> None:
    """Confusion matrix, per-class IoU/precision/recall/F1, mIoU, frequency-weighted IoU, accuracy
    and boundary F1, for a mask against reference labels or for a checkpoint on a validation split."""
    from rs_vit.errors import ConfigError

    if reference is not None and reference_opt is not None:
        raise ConfigError("Give the reference once: as the second argument or with --reference, not both.")
    reference = reference or reference_opt
    try:
        ignored = [int(v) for v in (ignore_values or "").split(",") if v.strip()] + list(ignore_value or [])
    except ValueError:
        raise ConfigError(f"--ignore-values {ignore_values!r}: give comma-separated integers, e.g. -1,0.") from None
    from rs_vit.io.atomic import check_output

    # the outputs are checked before the work (which can take long), not when they are written
    for path, label in ((json_out, "--json output"), (plot, "--plot output")):
        if path is not None:
            check_output(path, overwrite=overwrite, label=label)
    if per_window:
        base0 = (json_out.with_suffix("") if json_out else Path("evaluation")) if checkpoint is not None else (
            prediction.with_suffix("") if prediction is not None else None)
        if base0 is not None:
            check_output(Path(str(base0) + "_windows.csv"), overwrite=overwrite, label="per-window CSV")
    from rs_vit.config import load_classes
    from rs_vit.evaluate.errormap import write_window_csv
    from rs_vit.evaluate.evaluator import evaluate_checkpoint, evaluate_mask
    from rs_vit.evaluate.report import format_table, plot_confusion_matrix, write_json

    from rs_vit.io.labels import class_codes

    class_defs = load_classes(classes) if classes else None
    names = [c.name for c in class_defs] if class_defs else None
    win = window_size if per_window else None
    metrics: dict[str, Any]
    if checkpoint is not None:
        if prediction is not None or reference is not None:
            raise ConfigError("With --checkpoint give no PREDICTION/REFERENCE: the validation "
                              "split of the training config is predicted and evaluated.")
        err_dir = error_map
        if per_window and err_dir is None:
            err_dir = (json_out.parent if json_out else Path(".")) / "error_maps"
        metrics = evaluate_checkpoint(checkpoint, config, overlap=overlap, blend=blend,
                                      batch_size=batch_size, device=device, precision=precision,
                                      tolerance=tolerance, error_map_dir=err_dir, per_window=win,
                                      overwrite=overwrite)
        base = json_out.with_suffix("") if json_out else Path("evaluation")
    else:
        if prediction is None or reference is None:
            raise ConfigError("Give PREDICTION and REFERENCE (e.g. rs-vit evaluate mask.tif "
                              "labels.gpkg), or --checkpoint runs/x/best.")
        row_range = None
        if rows:
            try:
                a, b = (int(v) for v in rows.split(":"))
            except ValueError:
                raise ConfigError(f"--rows {rows!r}: give FIRST:END, e.g. --rows 800:1024.") from None
            row_range = (a, b)
        target = error_map
        if per_window and target is None:
            target = prediction.with_name(prediction.stem + "_errors.tif")
        metrics = evaluate_mask(prediction, reference, class_names=names, num_classes=num_classes,
                                ignore_index=ignore_index, ignore_values=ignored,
                                label_attribute=label_attribute, background=background,
                                tolerance=tolerance, rows=row_range, error_map=target,
                                per_window=win, overwrite=overwrite,
                                class_codes=class_codes(class_defs) if class_defs else None)
        base = prediction.with_suffix("")
    echo(format_table(metrics))
    for s in metrics.get("scenes", []) if len(metrics.get("scenes", [])) > 1 else []:
        miou = "-" if s["miou"] is None else f"{s['miou']:.4f}"
        echo(f"  {Path(s['scene']).name}: {s['pixels']:,} validation pixels, mIoU {miou}")
    if metrics.get("error_map"):
        echo(f"Error map: {metrics['error_map']}")
    for s in metrics.get("scenes", []):
        if s.get("error_map"):
            echo(f"Error map: {s['error_map']}")
    if per_window:
        csv_path = Path(str(base) + "_windows.csv")
        write_window_csv(metrics["windows"], csv_path)
        worst = sorted((w for w in metrics["windows"] if w["accuracy"] is not None),
                       key=lambda w: w["accuracy"])[:3]
        echo(f"Per-window accuracy ({window_size} px): {csv_path}; worst: " + ", ".join(
            f"row {w['row']} col {w['col']} {w['accuracy']:.3f}" for w in worst))
    if json_out:
        write_json(metrics, json_out)
        echo(f"Metrics JSON: {json_out}")
    if plot:
        import numpy as np

        plot_confusion_matrix(np.asarray(metrics["confusion_matrix"]), metrics["class_names"], plot)
        echo(f"Confusion matrix: {plot}")
