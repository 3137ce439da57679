"""The quick start's demo runs end to end (with a tiny budget here; `make demo` uses the full one)."""

from __future__ import annotations

import json
from pathlib import Path

import rasterio

from rs_vit.demo import main


def test_demo_runs_end_to_end(tmp_path: Path, capsys, sample_dir: Path) -> None:
    out = tmp_path / "demo"
    assert main(["--out-dir", str(out), "--epochs", "1", "--steps-per-epoch", "4", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "trained from scratch" in text and "Held-out area" in text and "Majority-class baseline" in text
    for name in ("config.yaml", "metrics.csv", "best/model.safetensors", "scene_mask.tif",
                 "metrics.json", "confusion_matrix.png", "preview.png"):
        assert (out / name).is_file(), name
        assert str(Path(out.name) / name.split("/")[0]) in text or name.startswith("best/")
    m = json.loads((out / "metrics.json").read_text())
    assert {"whole_scene", "held_out_area"} <= set(m)
    with rasterio.open(sample_dir / "scene.tif") as src, rasterio.open(out / "scene_mask.tif") as dst:
        assert (dst.crs, dst.transform, dst.shape) == (src.crs, src.transform, src.shape)
