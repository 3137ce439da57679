"""``baseline:`` rows in ``rs-vit compare``: a per-pixel classifier fit on the same training crops
and scored on the same held-out crops as the grid's models, tabulated beside them, resumable."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("sklearn")

from rs_vit.errors import ConfigError  # noqa: E402
from rs_vit.evaluate.compare import load_grid, plan_grid, run_grid  # noqa: E402
from tests._helpers_evaluate import make_scene  # noqa: E402


def test_plan_adds_baseline_cells_per_fraction_and_seed() -> None:
    cells = plan_grid({"base": {}, "seed": 4, "axes": {"model": ["a"], "train_fraction": [0.5, 1.0]},
                       "baseline": [{"method": "random_forest", "indices": ["ndvi"], "seeds": [0, 1]},
                                    "gradient_boosting"]})
    base = [c for c in cells if c.baseline is not None]
    assert [c.id for c in base] == [
        "baseline-random_forest+ndvi-seed0-frac0.5", "baseline-random_forest+ndvi-seed0-frac1",
        "baseline-random_forest+ndvi-seed1-frac0.5", "baseline-random_forest+ndvi-seed1-frac1",
        "baseline-gradient_boosting-seed4-frac0.5", "baseline-gradient_boosting-seed4-frac1"]
    assert base[0].baseline == {"method": "random_forest", "indices": ["ndvi"], "seed": 0}
    assert base[0].values["model"] == "baseline:random_forest+ndvi"
    with pytest.raises(ConfigError, match="random_forest"):
        load_grid({"base": {}, "baseline": "random_forrest"})
    with pytest.raises(ConfigError, match="Did you mean 'n_estimators'"):
        load_grid({"base": {}, "baseline": {"method": "random_forest", "n_estimator": 3}})


def test_grid_with_baseline_row(tmp_path: Path) -> None:
    make_scene(tmp_path / "data")
    grid = {
        "base": {"data": {"scenes": [{"image": "data/scene.tif", "labels": "data/labels.tif"}],
                          "classes": "data/classes.yaml", "val_fraction": 0.3}},
        "seed": 3, "axes": {"train_fraction": [0.5]},
        "baseline": {"method": "random_forest", "n_estimators": 5, "n_jobs": 1, "seeds": [0, 1]},
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    # only the baseline cells are run here: the model cell's training is covered by test_compare
    cells = [c for c in plan_grid(path) if c.baseline is not None]
    assert len(cells) == 2
    out = tmp_path / "out"
    res = run_grid(path, out, report_only=True, log=lambda s: None)
    assert len(res.missing) == 3  # 1 model cell + 2 baseline cells, none run yet
    from rs_vit.evaluate import compare

    g, base_dir = compare.load_grid(path)
    cfg = compare._base_config(g, base_dir)
    rows = []
    for c in cells:
        row = compare._baseline_cell(cfg, c, out, g["predict"], out / "cells" / c.id, lambda s: None)
        (out / "cells" / c.id / "result.json").write_text(json.dumps(row))
        rows.append(row)
    for r in rows:
        assert r["model"] == "baseline:random_forest" and r["overlap"] is None
        assert r["train_pixels"] == 17 * 64  # the same top half of the training rows as a model cell
        assert 0.0 <= r["miou"] <= 1.0 and r["mpx_per_s"] > 0
        m = json.loads((out / "cells" / r["cell"] / "metrics.json").read_text())
        assert m["pixels"] == 14 * 64  # the held-out rows 34..47, scored like a model's mask
    assert rows[0]["miou"] > 0.5  # the classes of the tiny scene are visible pixel by pixel
    res = run_grid(path, out, report_only=True, log=lambda s: None)
    assert sorted(res.skipped) == sorted(c.id for c in cells) and len(res.missing) == 1
    table = list(csv.DictReader((out / "results.csv").open()))
    assert {t["seed"] for t in table} == {"0", "1"}
    md = (out / "results.md").read_text()
    assert "baseline:random_forest" in md and "per-pixel classifiers" in md
    assert "Mean ± standard deviation over seeds" in md and "| baseline:random_forest | 0.5 | - | 2 |" in md
