"""``rs-vit models``: list the registered models with their size, cost and valid tiles."""

from __future__ import annotations

from typing import Annotated

import typer

from rs_vit.cli.app import app, handle_errors


@app.command("models")
@handle_errors
def models_cmd(
    pattern: Annotated[str, typer.Argument(help="Glob filter on model names, e.g. 'setr_*'.")] = "*",
    family: Annotated[str | None, typer.Option(help="Only this family (vit, deit, segmenter, swin, segformer, "
                                               "mixer, hybrid, dpt, cnn, smp).")] = None,
    flops: Annotated[bool, typer.Option("--flops", help="Compute parameters and GFLOPs now for models missing "
                                        "from the packaged table (slow for big models).")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table instead.")] = False,
) -> None:
    """List the registered segmentation models: family, parameters, GFLOPs per 512x512 tile (or the
    model's one valid tile), valid tile sizes and pretrained sources."""
    from rich.console import Console
    from rich.table import Table

    from rs_vit.models.export import export_support
    from rs_vit.models.registry import get_entry, list_models
    from rs_vit.models.stats import cached_stats, compute_stats, zoo_table_markdown

    names = list_models(pattern, family)
    stats = cached_stats()
    if flops:
        for name in names:
            if name not in stats:
                stats[name] = compute_stats(name)
    if markdown:
        typer.echo(zoo_table_markdown(stats, names), nl=False)
        return
    table = Table(title="rs-vit models")
    for col in ("name", "family", "params (M)", "GFLOPs/tile", "valid tiles", "pretrained", "ONNX export"):
        table.add_column(col, no_wrap=True)
    table.add_column("source", ratio=1)
    for name in names:
        e = get_entry(name)
        s = stats.get(name)
        tile = f"= {e.fixed_tile}" if e.fixed_tile else f"× {e.tile_multiple}"
        table.add_row(name, e.family, f"{s['params'] / 1e6:.1f}" if s else "?",
                      f"{s['gflops']:g} @{s['tile']}" if s else "?", tile,
                      ", ".join(e.pretrained) or "-", export_support(name), e.source)
    if not names:
        typer.echo(f"No model matches {pattern!r}" + (f" in family {family!r}" if family else "") + ".", err=True)
    Console().print(table)
    if any(n not in stats for n in names):
        typer.echo("?: not in the packaged table; run with --flops to compute.", err=True)
