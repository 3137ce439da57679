"""``rs-vit weights``: list the catalogue of geospatial pretrained weights."""

from __future__ import annotations

from typing import Annotated

import typer

from rs_vit.cli.app import app, handle_errors


@app.command("weights")
@handle_errors
def weights_cmd(
    name: Annotated[str | None, typer.Argument(help="Show one entry in full (bands, normalisation, "
                                               "download, licence, citation, notes).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only weights that fit this "
                                              "registered model.")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table instead.")] = False,
) -> None:
    """List the geospatial foundation-model weights rs-vit can start from (`--pretrained NAME`):
    name, architecture, bands, licence. Bands are matched by name when they load."""
    from rs_vit.models.catalogue import FAMILIES, get_weights, list_weights

    if name is not None:
        e = get_weights(name, model=model)
        rows = [
            ("name", e.name), ("title", e.title), ("architecture", e.encoder),
            ("models", ", ".join(e.models) + (f" (model.kwargs {e.model_kwargs})" if e.model_kwargs else "")),
            ("bands", ", ".join(f"{b} ({n}, {w:g} µm)" for b, n, w in zip(e.bands, e.native_bands, e.wavelengths))
             or "any band with a known wavelength"),
            ("input", f"{e.units}; scaling {e.scaling}"),
            ("mean", ", ".join(f"{v:g}" for v in e.mean) or "-"), ("std", ", ".join(f"{v:g}" for v in e.std) or "-"),
            ("patch / image", f"{e.patch_size or '-'} / {e.image_size}"), ("position embedding", e.pos_embed),
            ("key layout", e.converter), ("download", e.download), ("licence", e.licence),
            ("citation", e.citation), ("notes", e.notes or "-"),
        ]
        for key, value in rows:
            typer.echo(f"{key:>18}: {value}")
        return
    entries = [get_weights(n) for n in list_weights()]
    if model:
        entries = [e for e in entries if model in e.models]
    header = ("name", "architecture", "bands", "licence")
    rows2 = [(e.name, e.encoder, ", ".join(e.bands) if e.bands else "any (by wavelength)",
              e.licence.split(" (")[0]) for e in entries]
    if markdown:
        typer.echo("| " + " | ".join(header) + " |")
        typer.echo("|" + " --- |" * len(header))
        for r in rows2:
            typer.echo("| " + " | ".join(f"`{r[0]}`" if i == 0 else r[i] for i in range(len(r))) + " |")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="rs-vit weights (use: rs-vit train --pretrained NAME; details: rs-vit weights NAME)")
    for col in header:
        table.add_column(col, no_wrap=col in ("name", "architecture"), ratio=1 if col == "bands" else None)
    for r in rows2:
        table.add_row(*r)
    Console().print(table)
    typer.echo("Families (the member fitting --model is used): "
               + "; ".join(f"{f} -> {', '.join(m)}" for f, m in FAMILIES.items()))
    if model and not entries:
        typer.echo(f"No catalogued weights fit model {model!r}.", err=True)
