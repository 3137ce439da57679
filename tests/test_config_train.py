"""Config: new sections and keys, refusal of unknown keys, path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rs_vit.config import dump_config, load_config, parse_config
from rs_vit.errors import ConfigError


def test_unknown_keys_are_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'train.grad_acum'.*Did you mean 'grad_accum'"):
        parse_config({"train": {"grad_acum": 2}})
    with pytest.raises(ConfigError, match=r"unknown key 'distill.temprature'.*'temperature'"):
        parse_config({"distill": {"temprature": 2}})
    with pytest.raises(ConfigError, match=r"unknown key 'data.augment.flip'"):
        parse_config({"data": {"augment": {"flip": True}}})
    with pytest.raises(ConfigError, match=r"distill.mode"):
        parse_config({"distill": {"mode": "medium"}})


def test_yaml_paths_are_relative_to_the_yaml_and_flags_to_the_cwd(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "classes.yaml").write_text(yaml.safe_dump({"classes": [{"id": 0, "name": "a"}, {"id": 1, "name": "b"}]}))
    y = tmp_path / "cfg" / "run.yaml"
    y.write_text(yaml.safe_dump({
        "data": {"scenes": [{"image": "s.tif", "labels": "l.gpkg"}], "classes": "classes.yaml", "chips": "chips"},
        "train": {"out_dir": "../runs/x", "init_from": "ck"}, "distill": {"teacher": "t/best"},
    }))
    cfg = load_config(y)
    assert cfg.data.scenes[0].image == tmp_path / "cfg" / "s.tif"
    assert cfg.data.chips == tmp_path / "cfg" / "chips" and cfg.distill.teacher == tmp_path / "cfg" / "t" / "best"
    assert cfg.train.out_dir == tmp_path / "cfg" / "../runs/x" and [c.name for c in cfg.data.classes] == ["a", "b"]
    cfg = load_config(y, {"train.out_dir": "mine"})  # a flag: relative to the working directory
    assert cfg.train.out_dir == Path("mine")
    again = parse_config(yaml.safe_load(dump_config(cfg)))  # the saved config round-trips
    assert again == cfg
