"""ImageNet weights for every model family, through timm's and smp's own download code, offline.

A Hugging Face cache is built in tmp_path (``tests/hub_cache.py``) holding seeded random weights
under the exact repo ids, revisions and file names timm's pretrained cfgs and smp's encoder
settings ask for; ``HF_HUB_OFFLINE=1``. For each family (one small model each):

- every source tensor lands in the model, by name (none skipped unless the architecture has no
  place for it, and then the log line says so), and the log line counts them;
- function preservation: on an RGB scene (in blue, green, red file order) the adapted encoder
  computes what the library-loaded source model computes on the same pixels in R, G, B order; on
  a 13-band Sentinel-2 scene with ``band_init: zero`` it computes the same from the RGB bands.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from _helpers_models import S2, save_state
from hub_cache import add_smp, add_timm, timm_source, use_hub_cache
from torch import nn

from rs_vit.models import create_model
from rs_vit.models.adapt import AdaptReport
from rs_vit.models.registry import get_entry, list_models

BGR = ["blue", "green", "red"]  # Sentinel-2 / Landsat file order: not ImageNet's R, G, B
CLASSIFIER = ("head.", "fc.")  # timm drops its classifier when asked for num_classes=0


class _Features(nn.Module):
    """An smp encoder's features without the first, which is the input itself."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(x)[1:]


def _smp_encoder(name: str, **kw: object) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        import segmentation_models_pytorch as smp

        return _Features(smp.encoders.get_encoder(name, in_channels=3, **kw))

    return make


def _smp_features(model: nn.Module) -> nn.Module:
    return _Features(model.encoder)


def _timm_features(name: str, **kw: object) -> Callable[[], nn.Module]:
    """``forward_features`` of the timm model as timm loads it (pretrained=True)."""
    def make() -> nn.Module:
        import timm

        m = timm.create_model(name, pretrained=True, num_classes=0, **kw)
        if not kw.get("features_only"):
            m.forward = m.forward_features  # type: ignore[method-assign]
        return m

    return make


class _Intermediates(nn.Module):
    """What rs-vit's token encoders compute (the outputs of chosen blocks), on a timm model."""

    def __init__(self, model: nn.Module, indices: list[int], norm: bool) -> None:
        super().__init__()
        self.model, self.indices, self.norm = model, indices, norm

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.model.forward_intermediates(x, indices=self.indices, norm=self.norm,
                                                     output_fmt="NCHW", intermediates_only=True))


def _timm_tokens(name: str, indices: list[int], norm: bool = False) -> Callable[[], nn.Module]:
    """The source ViT/DeiT/Mixer as timm loads it (pretrained=True), read out like the encoder."""
    def make() -> nn.Module:
        import timm

        kw = {} if name.startswith("mixer") else {"dynamic_img_size": True}
        return _Intermediates(timm.create_model(name, pretrained=True, num_classes=0, **kw), indices, norm)

    return make


def _tokens(model: nn.Module) -> nn.Module:
    return model.encoder


def _dpt_reference() -> nn.Module:
    """smp's own DPT encoder with timm's pretrained ViT-Ti (``encoder_weights`` set: pretrained)."""
    import segmentation_models_pytorch as smp

    return smp.DPT("tu-vit_tiny_patch16_224", encoder_weights="imagenet", in_channels=3, classes=2,
                   dynamic_img_size=True).encoder


#: timm keys a token encoder may hold or not: rs-vit prunes the final norm of encoders that read
#: block outputs without it (``rs_vit.models.prune``); either way they never run.
_FINAL_NORM = r"norm\.(weight|bias)"


@dataclass
class Family:
    """One family's smallest model, where its sources go, what has no place in it, and how to
    compare its encoder with the source model loaded by the library itself."""

    model: str
    sources: list[tuple[str, str, str]]  # (timm | smp, name, submodule) in the order the model loads them
    reference: Callable[[], nn.Module]  # the library-loaded source model (RGB in R, G, B order)
    encoder: Callable[[nn.Module], Callable[[torch.Tensor], object]]
    size: int = 64
    unused: dict[str, str] = field(default_factory=dict)  # source name -> regex of keys with no place
    optional: dict[str, str] = field(default_factory=dict)  # source name -> regex of keys that may not land


FAMILIES = {
    "segformer": Family("segformer_b0", [("smp", "mit_b0", "encoder")], _smp_encoder("mit_b0", weights="imagenet"),
                        _smp_features),
    "swin": Family("upernet_swin_tiny", [("timm", "swin_tiny_patch4_window7_224", "encoder")],
                   _smp_encoder("tu-swin_tiny_patch4_window7_224", weights=True, dynamic_img_size=True),
                   _smp_features,
                   # smp's features model ends at the last stage: timm's final norm has no place
                   unused={"swin_tiny_patch4_window7_224": r"norm\.(weight|bias)"}),
    "vit": Family("setr_naive_vit_tiny", [("timm", "vit_tiny_patch16_224", "encoder.model")],
                  _timm_tokens("vit_tiny_patch16_224", [11]), _tokens, size=224,
                  optional={"vit_tiny_patch16_224": _FINAL_NORM}),
    "segmenter": Family("segmenter_vit_tiny", [("timm", "vit_tiny_patch16_224", "encoder.model")],
                        _timm_tokens("vit_tiny_patch16_224", [11], norm=True), _tokens, size=224),
    "deit": Family("segmenter_deit_tiny", [("timm", "deit_tiny_patch16_224", "encoder.model")],
                   _timm_tokens("deit_tiny_patch16_224", [11], norm=True), _tokens, size=224),
    "dpt": Family("dpt_vit_tiny", [("timm", "vit_tiny_patch16_224", "encoder")], _dpt_reference,
                  _tokens, size=224, optional={"vit_tiny_patch16_224": _FINAL_NORM}),
    "cnn": Family("unet_resnet18", [("smp", "resnet18", "encoder")], _smp_encoder("resnet18", weights="imagenet"),
                  _smp_features),
    "hybrid": Family(
        "transunet_r18_vit_small", [("timm", "resnet18", "cnn"), ("timm", "vit_small_patch16_224", "transformer")],
        _timm_features("resnet18", features_only=True, out_indices=(0, 1, 2, 3)), lambda m: m.cnn,
        # the hybrid uses ResNet strides 2-8 and 8 ViT blocks on CNN tokens (patch embedding from
        # 256 CNN channels, no class token): the rest of both sources has no place in it
        unused={"resnet18": r"layer4\..*",
                "vit_small_patch16_224": r"blocks\.(8|9|10|11)\..*|cls_token|patch_embed\.proj\.weight"}),
    "mixer": Family("setr_pup_mixer_b16", [("timm", "mixer_b16_224", "encoder.model")],
                    _timm_tokens("mixer_b16_224", [11]), _tokens, size=224,
                    optional={"mixer_b16_224": _FINAL_NORM}),
}


def test_every_family_that_claims_imagenet_is_tested_here() -> None:
    claimed = {get_entry(n).family for n in list_models() if "imagenet" in get_entry(n).pretrained}
    tested = {get_entry(f.model).family for f in FAMILIES.values()} | {"smp"}  # smp_model: cnn's path
    assert claimed <= tested, f"families claiming ImageNet weights without a test: {claimed - tested}"


def test_every_imagenet_claim_names_weights_timm_or_smp_publish() -> None:
    """Each entry claiming ImageNet weights loads from sources that have them (timm: a pretrained cfg
    with a hub id; smp: an ``imagenet`` setting); entries whose encoder has none claim nothing."""
    import segmentation_models_pytorch as smp
    import timm

    def published(kind: str, name: str) -> bool:
        if kind == "timm":
            cfg = timm.models.get_pretrained_cfg(name)
            return cfg is not None and bool(cfg.hf_hub_id)
        return "imagenet" in smp.encoders.encoders[name]["pretrained_settings"]

    for n in list_models():
        e = get_entry(n)
        if n == "smp_model":  # any smp encoder, named at build time
            continue
        sources = e.extra["sources"]
        assert sources, n
        assert ("imagenet" in e.pretrained) == all(published(k, s) for k, s in sources), n
    assert get_entry("setr_pup_mixer_s16").pretrained == ()


def _fill_cache(cache: Path, fam: Family) -> list[dict[str, torch.Tensor]]:
    return [add_timm(cache, name) if kind == "timm" else add_smp(cache, name) for kind, name, _ in fam.sources]


def _check_landed(model: nn.Module, fam: Family, states: list[dict[str, torch.Tensor]]) -> None:
    """Every source tensor is in the model under its name (prefix / features alias) and equal,
    except the first layer (checked per band) and resampled position embeddings."""
    reports: list[AdaptReport] = model.rs_vit_init_reports
    assert len(reports) == len(fam.sources)
    for (kind, name, module), state, report in zip(fam.sources, states, reports, strict=True):
        expected = {k: v for k, v in state.items() if not (kind == "timm" and k.startswith(CLASSIFIER))}
        unused_re = re.compile(fam.unused.get(name, r"(?!)"))
        optional_re = re.compile(fam.optional.get(name, r"(?!)"))
        must = {k for k in expected if unused_re.fullmatch(k)}
        may = must | {k for k in expected if optional_re.fullmatch(k)}
        assert report.n_source == len(expected)
        assert must <= set(report.skipped) <= may, f"{name}: skipped {report.skipped}, expected {sorted(must)}"
        unused = sorted(report.skipped)
        assert report.n_landed == len(expected) - len(unused)
        line = report.lines()[0]
        assert f"loaded {report.n_landed}/{len(expected)} tensors" in line
        if unused:
            assert unused[0] in line or len(unused) > 4
        own = model.get_submodule(module).state_dict()
        for sk, value in expected.items():
            if sk in unused:
                continue
            mk = report.renamed.get(sk, report.prefix + sk)
            if mk in report.adapted or any(r.startswith(mk + " ") for r in report.resampled):
                continue
            assert torch.equal(own[mk], value), f"{name}: {sk} -> {module}.{mk} differs"
    assert reports[0].adapted, f"{fam.model}: no input layer adapted"


def _run_family(fam: Family, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hub"
    use_hub_cache(monkeypatch, cache)
    states = _fill_cache(cache, fam)
    torch.manual_seed(0)
    model = create_model(fam.model, in_channels=3, num_classes=2, pretrained="imagenet",
                         band_names=BGR, band_init="zero").eval()
    _check_landed(model, fam, states)
    first = model.rs_vit_init_lines[1]
    assert "red<-red, green<-green, blue<-blue" in first.replace("blue<-blue, green<-green, red<-red",
                                                                 "red<-red, green<-green, blue<-blue")
    ref = fam.reference().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, fam.size, fam.size, generator=g)
    with torch.no_grad():
        want = ref(x)
        got = fam.encoder(model)(x[:, [2, 1, 0]])  # the same pixels in the scene's B, G, R order
    _assert_close(got, want)

    model13 = create_model(fam.model, in_channels=13, num_classes=2, pretrained="imagenet",
                           band_names=S2, band_init="zero").eval()
    lines = "\n".join(model13.rs_vit_init_lines)
    assert "initialised with zeros: coastal" in lines and "pretrained channels" in lines
    x13 = torch.randn(2, 13, fam.size, fam.size, generator=g)
    rgb = [S2.index(b) for b in ("red", "green", "blue")]
    with torch.no_grad():
        _assert_close(fam.encoder(model13)(x13), ref(x13[:, rgb]))


def _assert_close(got: object, want: object) -> None:
    if isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            _assert_close(a, b)
        return
    if want is None:
        assert got is None
        return
    assert isinstance(got, torch.Tensor) and isinstance(want, torch.Tensor)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "mixer"])
def test_imagenet_weights_land_and_preserve_the_function(family: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _run_family(FAMILIES[family], tmp_path, monkeypatch)


@pytest.mark.slow
def test_mixer_b16_imagenet_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLP-Mixer-B/16 (60 M parameters, the smallest Mixer timm has ImageNet weights for)."""
    _run_family(FAMILIES["mixer"], tmp_path, monkeypatch)


def test_timm_layout_file_loads_into_a_features_encoder(tmp_path: Path) -> None:
    """A local file in timm's layout (``layers.0...``) lands in smp's Swin features encoder
    (``layers_0...``): the `weights:` path, no download."""
    state = timm_source("swin_tiny_patch4_window7_224")
    path = save_state(state, tmp_path / "swin_t.safetensors")
    model = create_model("upernet_swin_tiny", in_channels=4, num_classes=2, weights=str(path),
                         band_names=["blue", "green", "red", "nir"], band_init="mean")
    report = model.rs_vit_init_reports[0]
    assert sorted(report.skipped) == ["head.fc.bias", "head.fc.weight", "norm.bias", "norm.weight"]
    assert report.n_landed == len(state) - 4
    key = "encoder.model.layers_2.blocks.3.mlp.fc1.weight"
    assert torch.equal(model.state_dict()[key], state["layers.2.blocks.3.mlp.fc1.weight"])
    assert "nir" in model.rs_vit_init_lines[1] and "mean of the pretrained kernels" in model.rs_vit_init_lines[1]


def test_missing_cache_entry_fails_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline with an empty cache: one error naming the weights and how to give a local file."""
    from rs_vit.errors import ModelError

    use_hub_cache(monkeypatch, tmp_path / "empty")
    with pytest.raises(ModelError, match=r"mit_b0.*HF_HUB_OFFLINE.*weights: PATH"):
        create_model("segformer_b0", in_channels=3, num_classes=2, pretrained="imagenet", band_names=BGR)


def test_training_log_counts_tensors_and_says_from_scratch_only_when_nothing_loaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`rs-vit train --model segformer_b0 --pretrained imagenet` offline from the cache: one line per
    weights source with its count, then the first layer's adaptation; "from scratch" only when
    nothing was loaded (also not next to --init-from)."""
    from _helpers_train import tiny_config, write_scene

    from rs_vit.config import parse_config
    from rs_vit.train.loop import train

    use_hub_cache(monkeypatch, tmp_path / "hub")
    add_smp(tmp_path / "hub", "mit_b0")
    paths = write_scene(tmp_path / "d")
    d = tiny_config(paths, tmp_path / "a", epochs=1, steps_per_epoch=1)
    d["model"] = {"name": "segformer_b0", "pretrained": "imagenet", "band_init": "zero"}
    logs: list[str] = []
    train(parse_config(d), log=logs.append, progress=False)
    text = "\n".join(logs)
    assert "weights smp-hub/mit_b0.imagenet@9ce53d1 (smp mit_b0): loaded 176/176 tensors" in text
    assert ("first layer patch_embed1.proj (6 bands): pretrained channels blue<-blue, green<-green, red<-red; "
            "initialised with zeros: nir, swir16, swir22") in text
    assert "scratch" not in text

    d2 = tiny_config(paths, tmp_path / "b", epochs=1, steps_per_epoch=1, init_from=str(tmp_path / "a" / "best"))
    logs.clear()
    train(parse_config(d2), log=logs.append, progress=False)
    text = "\n".join(logs)
    assert f"Initialised from {tmp_path / 'a' / 'best'}: loaded" in text and "scratch" not in text

    logs.clear()
    train(parse_config(tiny_config(paths, tmp_path / "c", epochs=1, steps_per_epoch=1)), log=logs.append,
          progress=False)
    assert sum("from scratch" in line for line in logs) == 1
