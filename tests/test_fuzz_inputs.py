"""Fuzz tests: randomly corrupted GeoTIFFs and random configs always end in a clean error (or a
correct result), never a traceback, a crash or a partial output."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _helpers_reliability import assert_clean_error, cli, load_each_checkpoint_once, make_checkpoint, make_scene

FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def ckpt(fuzz_dir: Path) -> Path:
    return make_checkpoint(fuzz_dir / "best")


@pytest.fixture(scope="module")
def tiff_bytes(fuzz_dir: Path) -> bytes:
    """A tiny valid tiled, compressed 6-band GeoTIFF (so that corruption hits headers, offsets and
    compressed blocks alike)."""
    path = make_scene(fuzz_dir / "valid.tif", 40, 40, compress="deflate", tiled=True, blockxsize=16,
                      blockysize=16)
    return path.read_bytes()


@pytest.fixture(scope="module")
def cached_model(ckpt: Path) -> Iterator[None]:
    """Load the checkpoint once: every example then costs only the scene's checks and windows."""
    with load_each_checkpoint_once():
        yield


def _corrupt(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, pos, val in ops:
        if not buf:
            break
        i = pos % len(buf)
        if kind == "flip":
            buf[i] ^= 1 << (val % 8)
        elif kind == "set":
            buf[i] = val % 256
        elif kind == "truncate":
            del buf[i:]
        elif kind == "zero":
            buf[i:i + 1 + val % 64] = bytes(len(buf[i:i + 1 + val % 64]))
        elif kind == "insert":
            buf[i:i] = bytes([val % 256]) * (1 + val % 7)
    return bytes(buf)


OPS = st.lists(st.tuples(st.sampled_from(["flip", "set", "truncate", "zero", "insert"]),
                         st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6)


@FUZZ
@given(ops=OPS)
def test_corrupted_geotiff_gives_clean_error_or_valid_mask(
    ops: list[tuple[str, int, int]], tiff_bytes: bytes, ckpt: Path, fuzz_dir: Path, cached_model: None
) -> None:
    scene = fuzz_dir / "corrupt.tif"
    out = fuzz_dir / "mask.tif"
    scene.write_bytes(_corrupt(tiff_bytes, ops))
    out.unlink(missing_ok=True)
    res = cli("predict", scene, "-k", ckpt, "--out", out, "--no-progress", "--batch-size", "8")
    assert res.exception is None, f"{type(res.exception).__name__}: {res.exception}"
    assert "Traceback" not in res.stderr
    if res.code == 0:  # the corruption hit nothing that matters: the output must be complete
        with rasterio.open(scene) as src, rasterio.open(out) as m:
            assert (m.width, m.height) == (src.width, src.height)
            m.read(1)
    else:
        assert_clean_error(res)
        assert not out.exists()
    left = [p.name for p in fuzz_dir.iterdir() if p.name.startswith(".")]
    assert left == [], f"temporary files left behind: {left}"


# -- configs -------------------------------------------------------------------------------------

def _keys() -> st.SearchStrategy[str]:
    from rs_vit.config import AugmentConfig, DataConfig, DistillConfig, ModelConfig, RunConfig, TrainConfig

    names: set[str] = set()
    for m in (RunConfig, DataConfig, ModelConfig, TrainConfig, DistillConfig, AugmentConfig):
        names |= set(m.model_fields)
    return st.sampled_from(sorted(names)) | st.text(min_size=1, max_size=8)


SCALARS = (st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12) | st.sampled_from(["auto", "ce+dice", "segformer_b0", "rows", "bf16", "1e-3"]))


def _values() -> st.SearchStrategy[Any]:
    return st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys(), inner, max_size=4),
                        max_leaves=12)


CONFIGS = st.dictionaries(st.sampled_from(["data", "model", "train", "distill"]) | st.text(max_size=6),
                          st.dictionaries(_keys(), _values(), max_size=6) | SCALARS, max_size=4)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(cfg=CONFIGS)
def test_random_configs_validate_or_raise_config_error(cfg: dict[str, Any]) -> None:
    from rs_vit.config import RunConfig, dump_config, parse_config
    from rs_vit.errors import ConfigError

    try:
        out = parse_config(cfg)
    except ConfigError as exc:
        msg = str(exc)
        assert msg.startswith("config: ") and "\n" not in msg.strip(), msg
        return
    assert isinstance(out, RunConfig)
    assert parse_config(__import__("yaml").safe_load(dump_config(out))) == out  # round-trips


@settings(max_examples=200, deadline=None, derandomize=True)
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_random_yaml_text_is_config_error_or_mapping(text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    from rs_vit.config import load_config
    from rs_vit.errors import ConfigError

    path = tmp_path_factory.getbasetemp() / "random.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        load_config(path)
    except ConfigError:
        pass


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=st.dictionaries(st.sampled_from(["format", "format_version", "name", "in_channels", "num_classes",
                                             "bands", "mean", "std", "classes", "tile_size", "nodata"]),
                            _values(), max_size=11))
def test_random_checkpoint_descriptions_are_checkpoint_errors(meta: dict[str, Any], ckpt: Path) -> None:
    """A damaged rs_vit.json is a CheckpointError (or a spec that validates), never a crash."""
    from rs_vit.errors import RsVitError
    from rs_vit.models.checkpoint import read_spec

    base = json.loads((ckpt / "rs_vit.json").read_text())
    folder = ckpt.parent / "fuzzed"
    folder.mkdir(exist_ok=True)
    (folder / "rs_vit.json").write_text(json.dumps({**base, **meta}, default=str, allow_nan=True))
    try:
        spec = read_spec(folder)
    except RsVitError:
        return
    assert spec.in_channels == len(spec.bands) and all(s > 0 and math.isfinite(s) for s in spec.std)
