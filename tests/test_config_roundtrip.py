"""A resolved config survives a JSON round trip (what DDP workers and saved runs rely on)."""

from __future__ import annotations

from pathlib import Path

from rs_vit.config import RunConfig, SceneDef, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_config_json_round_trip_keeps_paths_and_urls() -> None:
    cfg = load_config(ROOT / "sample_data" / "demo.yaml")
    again = RunConfig.model_validate_json(cfg.model_dump_json())
    assert again == cfg
    assert again.data.scenes[0].image == (ROOT / "sample_data" / "scene.tif")


def test_scene_image_kinds() -> None:
    assert SceneDef(image="https://example.org/a.tif").image == "https://example.org/a.tif"
    assert SceneDef(image="/vsicurl/http://x/a.tif").image == "/vsicurl/http://x/a.tif"
    local = SceneDef(image="a.tif").image
    assert isinstance(local, Path) and local.is_absolute()
    both = SceneDef(image=["b2.tif", "s3://bucket/b3.tif"]).image
    assert isinstance(both, list) and isinstance(both[0], Path) and both[1] == "s3://bucket/b3.tif"
