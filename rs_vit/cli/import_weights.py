"""``rs-vit import-weights``: turn foreign weights (or a checkpoint) into an rs-vit checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rs_vit.cli.app import app, echo, handle_errors

BANDS = "Band adaptation"


@app.command("import-weights")
@handle_errors
def import_weights_cmd(
    weights: Annotated[Path, typer.Argument(exists=True, help="Weights file (.safetensors/.pth/.bin, timm or smp "
                                            "key layout), or an rs-vit checkpoint folder to re-target.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint folder to write.")],
    description: Annotated[Path | None, typer.Option("--description", "-d", exists=True, dir_okay=False,
                                                     help="YAML/JSON: model, model_kwargs, bands, mean, std, "
                                                     "scale, classes, tile_size (see docs/models.md).")] = None,
    to_bands: Annotated[str | None, typer.Option(help="Comma-separated band names the checkpoint should take "
                                                 "(matched by name).", rich_help_panel=BANDS)] = None,
    to_sensor: Annotated[str | None, typer.Option(help="Sensor preset whose bands the checkpoint should take "
                                                  "(e.g. sentinel2_l1c).", rich_help_panel=BANDS)] = None,
    band_init: Annotated[str, typer.Option(help="Start of bands the weights do not know: zero (same outputs), "
                                           "mean, random, cycle.", rich_help_panel=BANDS)] = "zero",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing checkpoint folder.")] = False,
) -> None:
    """Make a checkpoint that predict, evaluate and train --init-from accept like any other."""
    from rs_vit.errors import ConfigError, OutputError
    from rs_vit.io.bands import preset_names
    from rs_vit.models.foreign import adapt_checkpoint, import_weights

    if out.exists() and not overwrite:
        raise OutputError(f"Checkpoint folder {out} already exists; pass --overwrite to replace it.")
    if to_bands and to_sensor:
        raise ConfigError("Give --to-bands or --to-sensor, not both.")
    bands = [b.strip() for b in to_bands.split(",") if b.strip()] if to_bands else (
        preset_names(to_sensor) if to_sensor else None)
    if description is None:
        if not (weights.is_dir() and (weights / "rs_vit.json").is_file()):
            raise ConfigError(f"{weights} is not an rs-vit checkpoint: give --description desc.yaml "
                              "(architecture, bands, normalisation, classes).")
        if not bands:
            raise ConfigError("Re-targeting a checkpoint needs --to-bands or --to-sensor.")
        path, log = adapt_checkpoint(weights, out, bands, band_init)
    else:
        path, log = import_weights(weights, description, out, to_bands=bands, band_init=band_init)
    for line in log:
        echo(line)
    echo(f"Checkpoint: {path}")
