"""Parameters and GFLOPs of the zoo's models, cached so ``rs-vit models`` stays instant.

Counting runs the model on the ``meta`` device under :class:`torch.utils.flop_counter.FlopCounterMode`
(no memory, no arithmetic; falls back to the CPU for models that cannot be built on ``meta``). The
numbers are for 3 input bands and 2 classes (the decoder's last layer barely changes them), one
512 × 512 tile (or the model's one valid tile). Regenerate the packaged table and the docs table::

    python -m rs_vit.models.stats    # rewrites rs_vit/models/zoo_stats.json and the table in docs/models.md
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

STATS_FILE = Path(__file__).with_name("zoo_stats.json")
TILE = 512


@contextmanager
def meta_device() -> Iterator[None]:
    """Build modules on the ``meta`` device (no memory, no init arithmetic). ``linspace``/``arange``
    without a device stay on the CPU, since builders call ``.item()`` on them (MiT's drop-path rule)."""
    originals = {f: getattr(torch, f) for f in ("linspace", "arange")}

    def on_cpu(fn: Any) -> Any:
        return lambda *a, **k: fn(*a, **{**k, "device": k.get("device") or "cpu"})

    try:
        for f, fn in originals.items():
            setattr(torch, f, on_cpu(fn))
        with torch.device("meta"):
            yield
    finally:
        for f, fn in originals.items():
            setattr(torch, f, fn)


def compute_stats(name: str, *, tile: int | None = None, in_channels: int = 3) -> dict[str, Any]:
    """``{"params": int, "gflops": float, "tile": int}`` for one registered model."""
    from torch.utils.flop_counter import FlopCounterMode

    from rs_vit.models.registry import create_model, get_entry

    entry = get_entry(name)
    size = tile or entry.fixed_tile or TILE
    for device in ("meta", "cpu"):
        try:
            with meta_device() if device == "meta" else torch.device("cpu"):
                model = create_model(name, in_channels=in_channels, num_classes=2).eval().to(device)
                x = torch.zeros(1, in_channels, size, size)
            counter = FlopCounterMode(display=False)
            with counter, torch.no_grad():
                model(x)
            return {"params": int(sum(p.numel() for p in model.parameters())),
                    "gflops": round(counter.get_total_flops() / 1e9, 1), "tile": size}
        except (RuntimeError, NotImplementedError):
            if device == "cpu":
                raise
    raise AssertionError("unreachable")


def cached_stats() -> dict[str, dict[str, Any]]:
    """The packaged table (empty when it was never generated)."""
    try:
        return json.loads(STATS_FILE.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def zoo_table_markdown(stats: dict[str, dict[str, Any]], names: list[str] | None = None) -> str:
    """The zoo as a Markdown table (the one in docs/models.md)."""
    from rs_vit.models.registry import get_entry, list_models

    rows = ["| name | family | params (M) | GFLOPs / tile | valid tiles | pretrained | source |",
            "| --- | --- | ---: | ---: | --- | --- | --- |"]
    for name in names if names is not None else list_models():
        e = get_entry(name)
        s = stats.get(name, {})
        tile = f"= {e.fixed_tile}" if e.fixed_tile else f"multiples of {e.tile_multiple}"
        gf = f"{s['gflops']} @ {s['tile']}" if s else "-"
        params = f"{s['params'] / 1e6:.1f}" if s else "-"
        rows.append(f"| `{name}` | {e.family} | {params} | {gf} | {tile} | "
                    f"{', '.join(e.pretrained) or '-'} | {e.source} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Recompute every model's numbers, write the JSON cache and the docs table."""
    from rs_vit.models.registry import list_models

    args = sys.argv[1:] if argv is None else argv
    names = args or list_models()
    stats = cached_stats()
    for name in names:
        stats[name] = compute_stats(name)
        print(name, stats[name], flush=True)
    STATS_FILE.write_text(json.dumps(dict(sorted(stats.items())), indent=1) + "\n")
    docs = Path(__file__).resolve().parents[2] / "docs" / "models.md"
    if docs.is_file():
        text = docs.read_text()
        start, end = "<!-- zoo-table:start -->", "<!-- zoo-table:end -->"
        if start in text and end in text:
            head, rest = text.split(start, 1)
            docs.write_text(head + start + "\n" + zoo_table_markdown(stats) + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    main()
