"""``rs-vit compare``: run a small grid of experiments from one YAML file and tabulate them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rs_vit.cli.app import app, echo, handle_errors


@app.command("compare")
@handle_errors
def compare_cmd(
    grid: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Grid YAML: base config + axes (model, band_init, pretrained, train_fraction, overlap, blend, or dotted config keys).")],
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", help="Output folder; finished cells in it are not run again.")] = Path("runs/compare"),
    dry_run: Annotated[bool, typer.Option(help="List the cells (and which are done) without running anything.")] = False,
    rerun: Annotated[bool, typer.Option(help="Run every cell again, training included.")] = False,
    report_only: Annotated[bool, typer.Option(help="Run nothing; write the table and plots from the cells finished so far.")] = False,
) -> None:
    """Train, predict and evaluate every cell of a grid with the same seed and budget; write
    results.csv, results.md and plots (accuracy vs throughput, vs training-set size, boundary F1)."""
    from rs_vit.evaluate.compare import plan_grid, run_grid

    if dry_run:
        cells = plan_grid(grid)
        runs = {c.run for c in cells}
        for c in cells:
            done = (out_dir / "cells" / c.id / "result.json").is_file()
            echo(f"{'done ' if done else 'to do'}  {c.id}")
        echo(f"{len(cells)} cells, {len(runs)} training runs")
        return
    if rerun and report_only:
        from rs_vit.errors import ConfigError

        raise ConfigError("--rerun and --report-only exclude each other; give one of them.")
    result = run_grid(grid, out_dir, rerun=rerun, report_only=report_only, log=echo)
    echo(f"{len(result.ran)} cells run, {len(result.skipped)} already done"
         + (f", {len(result.missing)} not run yet" if result.missing else ""))
    for name, path in result.outputs.items():
        echo(f"{name}: {path}")
