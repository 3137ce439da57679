"""ONNX export and ONNX Runtime prediction, checked against PyTorch.

For a representative of every family, ONNX Runtime's probabilities equal PyTorch's (max. abs.
difference <= 1e-4, float32) at two tile sizes and batch sizes 1 and 3; ``predict`` gives the same
mask with both backends on a generated scene; the real ukis-csmask weights go import -> export ->
predict on the Sen1Floods11 chip. Exports take 10-40 s each on 2 CPU cores (torch.export), so the
sweep over families is marked slow; the default run exports SegFormer-B0 once (through the CLI).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from _helpers_infer import make_scene
from typer.testing import CliRunner

from rs_vit.errors import CheckpointError, ConfigError, ModelError
from rs_vit.models.checkpoint import ModelSpec, save_checkpoint
from rs_vit.models.registry import create_model, get_entry

pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed (pip install 'rs-vit[onnx]')")
pytest.importorskip("onnxscript", reason="onnxscript (torch's ONNX exporter) is not installed")

BANDS = ["blue", "green", "red", "nir"]
TOL = 1e-4


def _checkpoint(name: str, folder: Path, tile: int, *, classes: int = 3, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = create_model(name, in_channels=len(BANDS), num_classes=classes, band_names=BANDS).eval()
    spec = ModelSpec(name=name, in_channels=len(BANDS), num_classes=classes, bands=list(BANDS),
                     mean=[1000.0, 1100.0, 1200.0, 1300.0], std=[500.0, 400.0, 450.0, 600.0],
                     classes=[{"id": i, "name": f"class{i}", "color": [40 * i, 100, 200]} for i in range(classes)],
                     tile_size=tile, nodata=0, extra={"family": get_entry(name).family})
    return save_checkpoint(folder / name, model, spec)


def _max_prob_diff(checkpoint: Path, onnx_path: Path, sizes: list[int], batches=(1, 3), *, exact: bool = True) -> dict:
    """Max. abs. probability difference, ORT vs PyTorch (float32), per (tile, batch); ``exact``:
    the logits must also agree to 1e-3 of their spread (float32 graphs)."""
    from rs_vit.infer.onnx_backend import load_onnx_model
    from rs_vit.models.checkpoint import load_model

    model, _ = load_model(checkpoint)
    onnx_model, spec = load_onnx_model(onnx_path)
    g = torch.Generator().manual_seed(1)
    out = {}
    for s in sizes:
        for b in batches:
            x = torch.randn(b, spec.in_channels, s, s, generator=g)
            with torch.no_grad():
                ref_logits = model(x)
            got_logits = onnx_model(x)
            assert got_logits.shape == ref_logits.shape == (b, spec.num_classes, s, s)
            # the logits vary over the tile, and agree to 1e-3 of that spread (random weights can
            # make nearly flat probabilities, which alone would prove little)
            spread = float(ref_logits.std(dim=(0, 2, 3)).max())
            assert spread > 1e-4, "constant output: the comparison would prove nothing"
            if exact:
                assert float((got_logits - ref_logits).abs().max()) <= 1e-3 * spread + 1e-5, (s, b, spread)
            out[(s, b)] = float((torch.softmax(got_logits, 1) - torch.softmax(ref_logits, 1)).abs().max())
    return out


@pytest.fixture(scope="module")
def segformer(tmp_path_factory):
    """A SegFormer-B0 checkpoint (4 bands, 3 classes, tile 64) exported through the CLI."""
    from rs_vit.cli.app import app

    tmp = tmp_path_factory.mktemp("onnx_segformer")
    ck = _checkpoint("segformer_b0", tmp, 64)
    onnx_path = tmp / "model.onnx"
    r = CliRunner().invoke(app, ["export", str(ck), "--onnx", str(onnx_path)])
    assert r.exit_code == 0, r.output
    return tmp, ck, onnx_path, r.output


def test_cli_export_is_self_describing(segformer) -> None:
    import onnx

    from rs_vit.models.checkpoint import read_spec
    from rs_vit.models.export import read_onnx_spec, sha256_file

    tmp, ck, onnx_path, output = segformer
    assert "Exported segformer_b0" in output and "any multiple of 32" in output and "max. probability difference" in output
    proto = onnx.load(str(onnx_path))
    props = {p.key: p.value for p in proto.metadata_props}
    meta = json.loads(props["rs_vit"])
    assert json.loads(Path(str(onnx_path) + ".json").read_text()) == meta  # the sidecar says the same
    spec = read_spec(ck)
    assert meta["spec"]["bands"] == BANDS == json.loads(props["bands"])
    assert meta["input"]["mean"] == spec.mean and meta["input"]["std"] == spec.std and meta["input"]["nodata"] == 0
    assert [c["color"] for c in meta["output"]["classes"]] == [c["color"] for c in spec.classes]
    assert meta["tile"] == {"size": 64, "multiple": 32, "dynamic_batch": True, "dynamic_height_width": True,
                            "fixed": None, "rule": "any multiple of 32"}
    assert meta["source"]["weights_sha256"] == sha256_file(ck / "model.safetensors")
    assert meta["export"]["checks"] and all(c["max_abs_prob_diff"] < TOL for c in meta["export"]["checks"])
    # the graph's own inputs: dynamic batch, height and width
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [bool(d.dim_param) for d in dims] == [True, False, True, True] and dims[1].dim_value == 4
    back = read_onnx_spec(onnx_path)
    assert back.name == "onnx:segformer_b0" and back.bands == spec.bands and back.classes == spec.classes
    assert back.extra["tile_multiple"] == 32 and back.extra["fixed_tile"] is None
    # without the metadata, the sidecar describes the file
    del proto.metadata_props[:]
    bare = tmp / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(CheckpointError, match="no rs-vit description"):
        read_onnx_spec(bare)
    Path(str(bare) + ".json").write_text(Path(str(onnx_path) + ".json").read_text())
    assert read_onnx_spec(bare).bands == BANDS


def test_segformer_onnx_equals_pytorch(segformer) -> None:
    _, ck, onnx_path, _ = segformer
    diffs = _max_prob_diff(ck, onnx_path, [64, 128])
    assert max(diffs.values()) <= TOL, diffs


def test_predict_with_both_backends_agrees(segformer, tmp_path) -> None:
    from rs_vit.cli.app import app
    from rs_vit.infer.engine import predict_scene

    _, ck, onnx_path, _ = segformer
    scene = make_scene(tmp_path / "scene.tif", 150, 170, nodata_box=(120, 150, 140, 170))
    torch_run = predict_scene(scene, tmp_path / "pt.tif", checkpoint=ck, precision="fp32", probabilities=True,
                              prob_dtype="float32")
    r = CliRunner().invoke(app, ["predict", str(scene), "-k", str(onnx_path), "-o", str(tmp_path / "ox.tif"),
                                 "--probabilities", "--prob-dtype", "float32", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "onnxruntime CPU fp32" in r.output
    with rasterio.open(tmp_path / "pt.tif") as a, rasterio.open(tmp_path / "ox.tif") as b:
        ma, mb = a.read(1), b.read(1)
        assert a.profile["transform"] == b.profile["transform"] and a.crs == b.crs
        assert b.tags()["rs_vit_model"] == "onnx:segformer_b0"
    assert torch_run.windows > 4
    assert ((ma == 255) == (mb == 255)).all() and (mb[120:, 140:] == 255).all()  # nodata stays nodata
    assert len(np.unique(ma[ma != 255])) > 1
    assert (ma == mb).mean() >= 0.999
    with rasterio.open(tmp_path / "pt_probs.tif") as a, rasterio.open(tmp_path / "ox_probs.tif") as b:
        assert np.nanmax(np.abs(a.read() - b.read())) <= TOL


def test_onnx_model_refuses_torch_only_options(segformer, tmp_path) -> None:
    from rs_vit.infer.engine import SlidingWindowPredictor
    from rs_vit.infer.onnx_backend import load_onnx_model

    _, _, onnx_path, _ = segformer
    model, spec = load_onnx_model(onnx_path)
    with pytest.raises(ConfigError, match="keeps the precision it was exported in"):
        SlidingWindowPredictor(model, spec, precision="bf16")
    with pytest.raises(ModelError, match="multiple of 32"):
        SlidingWindowPredictor(model, spec, tile_size=48)
    assert SlidingWindowPredictor(model, spec, tile_size=96).describe().endswith("onnxruntime CPU fp32, TTA none")


def test_missing_onnxruntime_is_one_line(segformer, monkeypatch) -> None:
    from rs_vit.infer.onnx_backend import load_onnx_model
    from rs_vit.models.export import export_onnx

    _, ck, onnx_path, _ = segformer
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(ConfigError, match=r'pip install "rs-vit\[onnx\]"'):
        load_onnx_model(onnx_path)
    with pytest.raises(ConfigError, match=r'pip install "rs-vit\[onnx\]"'):
        export_onnx(ck, onnx_path.with_name("again.onnx"))


def test_export_refuses_bad_options(segformer) -> None:
    from rs_vit.models.export import export_onnx

    tmp, ck, onnx_path, _ = segformer
    with pytest.raises(Exception, match="already exists"):
        export_onnx(ck, onnx_path)
    with pytest.raises(ConfigError, match="ending in .onnx"):
        export_onnx(ck, tmp / "model.bin")
    with pytest.raises(ConfigError, match="not both"):
        export_onnx(ck, tmp / "x.onnx", fp16=True, quantize="int8")
    with pytest.raises(ConfigError, match="Unknown --quantize"):
        export_onnx(ck, tmp / "x.onnx", quantize="int4")
    with pytest.raises(ModelError, match="multiple of 32"):
        export_onnx(ck, tmp / "x.onnx", tile_size=40)
    with pytest.raises(ConfigError, match="already an ONNX export"):
        export_onnx(onnx_path, tmp / "x.onnx")


def test_int8_and_fp16_conversions_of_an_export(segformer) -> None:
    """An fp32 export converted (no new tracing): int8 runs on the CPU and stays close; fp16 is
    written with float32 inputs/outputs and its check says whether the CPU provider could run it."""
    import onnx

    from rs_vit.models.export import export_onnx, read_onnx_spec, sha256_file

    tmp, ck, onnx_path, _ = segformer
    r = export_onnx(onnx_path, tmp / "int8.onnx", quantize="int8")
    assert r.metadata["export"]["precision"] == "int8"
    assert r.metadata["export"]["converted_from"]["sha256"] == sha256_file(onnx_path)
    assert read_onnx_spec(r.path).extra["onnx"]["precision"] == "int8"
    assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeLinear") for n in onnx.load(str(r.path)).graph.node)
    assert r.size_bytes < onnx_path.stat().st_size
    diffs = _max_prob_diff(ck, r.path, [64], exact=False)
    assert max(diffs.values()) < 0.2  # quantised: close, not equal (measured in docs/deployment.md)
    assert all(c["argmax_agreement"] > 0.9 for c in r.checks)
    h = export_onnx(onnx_path, tmp / "fp16.onnx", fp16=True)
    proto = onnx.load(str(h.path))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    check = h.checks[0]
    assert check["max_abs_prob_diff"] is None and "could not run" in check["not_checked"] or \
        check["max_abs_prob_diff"] < 0.05


# -- every family ----------------------------------------------------------------------------

FAMILIES = [
    ("unet_resnet18", [64, 128]),
    ("deeplabv3plus_resnet18", [64, 128]),
    ("setr_naive_vit_tiny", [64, 128]),
    ("segmenter_vit_tiny", [64, 128]),
    ("setr_pup_deit_small_distilled", [64, 128]),
    ("dpt_vit_tiny", [64, 128]),
    ("transunet_r18_vit_small", [64, 128]),
    ("setr_pup_mixer_s16", [224]),
]


@pytest.mark.parametrize(("name", "sizes"), [
    pytest.param(n, z, marks=() if n == "setr_naive_vit_tiny" else pytest.mark.heavy) for n, z in FAMILIES
], ids=[f for f, _ in FAMILIES])
def test_family_onnx_equals_pytorch(name, sizes, tmp_path) -> None:
    """One dynamic export per family, checked at two tile sizes and batch sizes 1 and 3."""
    from rs_vit.models.export import export_onnx

    ck = _checkpoint(name, tmp_path, sizes[0])
    r = export_onnx(ck, tmp_path / f"{name}.onnx", verify=False)
    fixed = get_entry(name).fixed_tile
    assert r.metadata["tile"]["dynamic_height_width"] is (fixed is None)
    diffs = _max_prob_diff(ck, r.path, sizes)
    assert max(diffs.values()) <= TOL, diffs


@pytest.mark.heavy
def test_swin_exports_one_tile_per_file(tmp_path) -> None:
    """Swin pads to whole windows in Python: its exports are fixed-size, one per tile size."""
    from rs_vit.infer.onnx_backend import load_onnx_model
    from rs_vit.models.export import export_onnx

    ck = _checkpoint("upernet_swin_tiny", tmp_path, 64)
    for tile in (64, 128):
        r = export_onnx(ck, tmp_path / f"swin{tile}.onnx", tile_size=tile, verify=False)
        assert r.metadata["tile"]["fixed"] == tile and "window" in r.metadata["export"]["notes"][0]
        diffs = _max_prob_diff(ck, r.path, [tile])
        assert max(diffs.values()) <= TOL, diffs
    _, spec = load_onnx_model(tmp_path / "swin128.onnx")
    from rs_vit.infer.engine import SlidingWindowPredictor

    with pytest.raises(ModelError, match="only accepts 128x128"):
        SlidingWindowPredictor(load_onnx_model(tmp_path / "swin128.onnx")[0], spec, tile_size=64)


# -- real weights ----------------------------------------------------------------------------

@pytest.mark.heavy
@pytest.mark.real_data
def test_ukis_csmask_import_export_predict(shared_data, tmp_path) -> None:
    """The real ukis-csmask cloud model: import -> export -> predict the Sen1Floods11 chip with
    ONNX Runtime; the mask agrees with PyTorch's (float32)."""
    from rs_vit.infer.engine import predict_scene
    from rs_vit.models.export import export_onnx
    from rs_vit.models.foreign import import_weights

    ukis = shared_data / "ukis_csmask"
    scene = shared_data / "sen1floods11" / "Spain_7370579_S2Hand.tif"
    meta = json.loads((ukis / "model_6b_l1c.json").read_text())["data"]
    mean, std = meta["dataset_statistics"]["img"]
    desc = {"model": "smp_model", "model_kwargs": {"arch": "Unet", "encoder": "efficientnet-b4"},
            "bands": meta["dataset_statistics"]["band_names"], "mean": mean, "std": std, "scale": 10000,
            "classes": ["clear", "cloud", "cloud_shadow"], "tile_size": meta["target_size"][0], "nodata": 0}
    (tmp_path / "ukis.json").write_text(json.dumps(desc))
    ck, _ = import_weights(ukis / "ukis_csmask_6b_l1c_smp_unet_effb4_fp16.safetensors", tmp_path / "ukis.json",
                           tmp_path / "ck")
    r = export_onnx(ck, tmp_path / "ukis.onnx")
    assert r.max_abs_diff is not None and r.max_abs_diff <= TOL
    ox = predict_scene(scene, tmp_path / "ox.tif", checkpoint=r.path, batch_size=2)
    predict_scene(scene, tmp_path / "pt.tif", checkpoint=ck, precision="fp32", batch_size=2)
    with rasterio.open(tmp_path / "pt.tif") as a, rasterio.open(tmp_path / "ox.tif") as b:
        ma, mb = a.read(1), b.read(1)
    assert ox.windows >= 4
    assert (ma == mb).mean() >= 0.999
    assert len(np.unique(mb[mb != 255])) >= 2  # a real mask, not one class
