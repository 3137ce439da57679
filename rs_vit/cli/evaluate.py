"""``rs-vit evaluate``: compare a predicted mask with reference labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rs_vit.cli.app import app, echo, handle_errors


@app.command("evaluate")
@handle_errors
def evaluate_cmd(
    prediction: Annotated[Path, typer.Argument(help="Predicted class mask GeoTIFF.")],
    reference: Annotated[Path, typer.Option("--reference", "-r", help="Reference labels: raster on the same grid, or vector file.")],
    classes: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="Classes YAML (default: names stored in the mask).")] = None,
    label_attribute: Annotated[str, typer.Option(help="Vector attribute holding the class id.")] = "class_id",
    ignore_index: Annotated[int, typer.Option(help="Reference value excluded from metrics.")] = 255,
    ignore_value: Annotated[list[int] | None, typer.Option(help="More reference values to exclude (repeatable).")] = None,
    background: Annotated[int | None, typer.Option(help="Class of pixels no vector polygon covers (default: ignored).")] = None,
    tolerance: Annotated[float, typer.Option(help="Boundary F1 tolerance in pixels.")] = 2.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics as JSON here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a confusion-matrix PNG here.")] = None,
) -> None:
    """Confusion matrix, per-class IoU/precision/recall/F1, mIoU, accuracy and boundary F1."""
    from rs_vit.config import load_classes
    from rs_vit.evaluate.evaluator import evaluate_mask
    from rs_vit.evaluate.report import format_table, plot_confusion_matrix, write_json

    names = [c.name for c in load_classes(classes)] if classes else None
    metrics = evaluate_mask(prediction, reference, class_names=names, ignore_index=ignore_index,
                            ignore_values=ignore_value or (), label_attribute=label_attribute,
                            background=background, tolerance=tolerance)
    echo(format_table(metrics))
    if json_out:
        write_json(metrics, json_out)
        echo(f"Metrics JSON: {json_out}")
    if plot:
        import numpy as np

        plot_confusion_matrix(np.asarray(metrics["confusion_matrix"]), metrics["class_names"], plot)
        echo(f"Confusion matrix: {plot}")
