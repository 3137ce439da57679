"""A per-scene progress bar with windows/s (rich), shared by the CLI and ``predict_scene``."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)


def rich_progress(total: int, name: str, *, console: Console | None = None,
                  disable: bool = False) -> Callable[[int], None]:
    """Start a transient bar for ``total`` windows of scene ``name``; returns ``tick(n)``, which
    advances it and stops it when complete."""
    bar = Progress(TextColumn(name), BarColumn(), MofNCompleteColumn(), TextColumn("windows"),
                   TextColumn("{task.fields[speed]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                   console=console or Console(stderr=True), disable=disable, transient=True)
    bar.start()
    task = bar.add_task(name, total=total, speed="")

    def tick(n: int) -> None:
        speed = bar.tasks[task].speed
        bar.update(task, advance=n, speed=f"{speed:.1f} win/s" if speed else "")
        if bar.tasks[task].finished:
            bar.stop()

    return tick
