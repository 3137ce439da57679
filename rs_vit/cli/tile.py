"""``rs-vit tile``: export image/mask chip GeoTIFFs from scenes and their labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rs_vit.cli.app import app, echo, handle_errors


@app.command("tile")
@handle_errors
def tile_cmd(
    image: Annotated[list[Path], typer.Option("--image", help="Scene GeoTIFF (repeat for several).")],
    labels: Annotated[list[Path], typer.Option("--labels", help="Labels for each --image: raster on the scene grid or vector file.")],
    classes: Annotated[Path, typer.Option("--classes", exists=True, dir_okay=False, help="YAML with classes: [{id, name, color}].")],
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", help="Folder to write images/ and masks/ into.")],
    tile_size: Annotated[int, typer.Option(help="Chip size in pixels.")] = 256,
    stride: Annotated[int | None, typer.Option(help="Distance between chips (default: the chip size, no overlap).")] = None,
    label_attribute: Annotated[str, typer.Option(help="Vector attribute holding the class id.")] = "class_id",
    label_value: Annotated[int | None, typer.Option(help="Class id for every polygon (vector labels without a class attribute).")] = None,
    background: Annotated[int | None, typer.Option(help="Class id of pixels no polygon covers (default: ignored).")] = None,
    bands: Annotated[str | None, typer.Option(help="Comma-separated band names overriding the scene's descriptions.")] = None,
    sensor: Annotated[str | None, typer.Option(help="Sensor preset naming the bands.")] = None,
    ignore_values: Annotated[str | None, typer.Option(help="Comma-separated label values to ignore (e.g. -1); written as nodata.")] = None,
    max_invalid: Annotated[float, typer.Option(help="Skip chips with a larger share of nodata/unlabelled pixels.")] = 0.9,
    overwrite: Annotated[bool, typer.Option(help="Replace existing chips.")] = False,
) -> None:
    """Cut scenes into georeferenced image/mask chips (images/NAME_ROW_COL.tif, masks/NAME_ROW_COL.tif).

    Train on them with `rs-vit train --chips OUT_DIR --classes classes.yaml`.
    """
    from rs_vit.config import DataConfig, SceneDef, load_classes
    from rs_vit.data.chips import export_chips
    from rs_vit.errors import ConfigError

    if len(labels) != len(image):
        raise ConfigError(f"Give one --labels per --image (got {len(image)} images, {len(labels)} labels).")
    data = DataConfig(classes=load_classes(classes), background=background,
                      bands=[b.strip() for b in bands.split(",")] if bands else None, sensor=sensor,
                      ignore_values=[int(v) for v in ignore_values.split(",") if v.strip()] if ignore_values else [])
    total = 0
    for img, lab in zip(image, labels):
        sd = SceneDef(image=img, labels=lab, label_attribute=label_attribute, label_value=label_value)
        n = len(export_chips(sd, data, out_dir, tile=tile_size, stride=stride, max_invalid=max_invalid,
                             overwrite=overwrite))
        echo(f"{img.name}: {n} chips")
        total += n
    echo(f"Wrote {total} image/mask chip pairs to {out_dir}")
