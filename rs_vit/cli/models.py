"""``rs-vit models``: list the registered models."""

from __future__ import annotations

from typing import Annotated

import typer

from rs_vit.cli.app import app, handle_errors


@app.command("models")
@handle_errors
def models_cmd(
    pattern: Annotated[str, typer.Argument(help="Glob filter on model names, e.g. 'vit_*'.")] = "*",
    family: Annotated[str | None, typer.Option(help="Only this family (e.g. segformer, cnn).")] = None,
) -> None:
    """List the registered segmentation models."""
    from rich.console import Console
    from rich.table import Table

    from rs_vit.models.registry import get_entry, list_models

    table = Table("name", "family", "tile", "pretrained", "source", title="rs-vit models")
    for name in list_models(pattern, family):
        e = get_entry(name)
        tile = f"= {e.fixed_tile}" if e.fixed_tile else f"× {e.tile_multiple}"
        table.add_row(name, e.family, tile, ", ".join(e.pretrained) or "-", e.source)
    Console().print(table)
