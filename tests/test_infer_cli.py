"""``rs-vit predict`` from the command line: many scenes, outputs, torchrun sharding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from _helpers_infer import make_scene, make_spec
from rs_vit.cli import app
from rs_vit.errors import ConfigError
from rs_vit.infer.shard import Rank, current_rank, rank_device, shard


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from rs_vit.models.checkpoint import save_checkpoint
    from rs_vit.models.registry import create_model

    torch.manual_seed(0)
    spec = make_spec(3, tile=32, name="segformer_b0")
    model = create_model("segformer_b0", in_channels=4, num_classes=3)
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "best", model, spec)


def _run(args: list[str], env: dict[str, str] | None = None):
    res = CliRunner().invoke(app, [str(a) for a in args], env=env)
    return res


def test_predict_many_scenes_glob_out_dir_and_summary(tmp_path: Path, checkpoint: Path) -> None:
    for i in range(3):
        make_scene(tmp_path / f"scene{i}.tif", 40 + 8 * i, 48, seed=i)
    out = tmp_path / "masks"
    res = _run(["predict", str(tmp_path / "scene*.tif"), "-k", checkpoint, "--out-dir", out,
                "--no-progress", "--confidence", "--vector", tmp_path / "vec", "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    for i in range(3):
        with rasterio.open(out / f"scene{i}_mask.tif") as m, rasterio.open(tmp_path / f"scene{i}.tif") as s:
            assert m.shape == s.shape and m.transform == s.transform
        assert (out / f"scene{i}_mask_confidence.tif").is_file()
        assert (tmp_path / "vec" / f"scene{i}_mask.gpkg").is_file()
    assert "3 scenes" in res.output and "total" in res.output
    assert res.output.count("windows/s") == 3
    # a second run refuses to overwrite, before loading the model
    res2 = _run(["predict", str(tmp_path / "scene*.tif"), "-k", checkpoint, "--out-dir", out, "--no-progress"])
    assert res2.exit_code == 2 and "--overwrite" in res2.output


def test_predict_one_scene_options(tmp_path: Path, checkpoint: Path) -> None:
    scene = make_scene(tmp_path / "s.tif", 48, 40)
    res = _run(["predict", scene, "-k", checkpoint, "-o", tmp_path / "m.tif", "--no-progress",
                "--probabilities", "--prob-dtype", "float32", "--tta", "flip", "--blend", "gaussian",
                "--overlap", "8", "--batch-size", "2"])
    assert res.exit_code == 0, res.output
    with rasterio.open(tmp_path / "m_probs.tif") as p:
        probs = p.read()
        assert p.count == 3 and p.descriptions == ("c0", "c1", "c2")
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)


@pytest.mark.parametrize("args,msg", [
    (["--tile-size", "30"], "multiple of 32"),
    (["--blend", "cosine"], "hann"),
    (["--tta", "d8"], "d4"),
    (["--prob-dtype", "int8"], "uint8"),
    (["--overlap", "40"], "no stride"),
])
def test_predict_bad_options_one_line_errors(tmp_path: Path, checkpoint: Path, args: list[str], msg: str) -> None:
    scene = make_scene(tmp_path / "s.tif", 16, 16)
    res = _run(["predict", scene, "-k", checkpoint, "-o", tmp_path / "m.tif", "--no-progress", *args])
    assert res.exit_code == 2 and msg in res.output, res.output
    assert not (tmp_path / "m.tif").exists()


def test_current_rank_and_shard() -> None:
    assert current_rank({}) == Rank(0, 1, 0)
    r = current_rank({"RANK": "1", "WORLD_SIZE": "3", "LOCAL_RANK": "1"})
    assert r == Rank(1, 3, 1) and r.distributed
    items = [f"s{i}" for i in range(7)]
    parts = [shard(items, Rank(k, 3, k)) for k in range(3)]
    assert parts[1] == ["s1", "s4"]
    assert sorted(sum(parts, [])) == sorted(items)  # every scene exactly once
    assert rank_device("cpu", r) == "cpu"
    assert rank_device("auto", Rank()) == "auto"
    with pytest.raises(ConfigError):
        current_rank({"RANK": "3", "WORLD_SIZE": "2"})


def test_predict_under_torchrun_env_takes_its_share(tmp_path: Path, checkpoint: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        make_scene(tmp_path / f"scene{i}.tif", 24, 24, seed=i)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    out = tmp_path / "masks"
    res = _run(["predict", str(tmp_path / "scene*.tif"), "-k", checkpoint, "--out-dir", out, "--no-progress",
                "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["scene1_mask.tif"]
    assert "[rank 1/2]" in res.output


def test_blank_scene_in_a_batch_is_reported_and_the_rest_predicted(tmp_path: Path, checkpoint: Path) -> None:
    make_scene(tmp_path / "a.tif", 24, 24)
    make_scene(tmp_path / "b_blank.tif", 24, 24, nodata=0, nodata_box=(0, 24, 0, 24))
    out = tmp_path / "masks"
    res = _run(["predict", tmp_path / "a.tif", tmp_path / "b_blank.tif", "-k", checkpoint, "--out-dir", out,
                "--no-progress", "--device", "cpu"])
    assert res.exit_code == 2
    assert "every pixel is nodata" in res.output and "1 of 2 scenes" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["a_mask.tif"]
