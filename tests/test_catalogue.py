"""The geospatial weights catalogue: every entry loads a file in its *published* key layout through
the real download path (an offline Hugging Face cache laid out like the hub, or a loopback HTTP
server), bands are matched by name, and the entry's normalisation lands in the checkpoint.

The files are generated: seeded random tensors under the real key names and shapes (for ViT-L
Prithvi and DOFA the same key pattern at ViT-Tiny width, registered as test entries that share
the real entries' download location and converter).
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import io
import json
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from hub_cache import add_file, use_hub_cache
from torch import nn

from rs_vit.errors import ConfigError, ModelError
from rs_vit.models import catalogue as C
from rs_vit.models.convert import sincos_3d
from rs_vit.models.registry import create_model, get_entry

DATA = Path(__file__).resolve().parent / "data"
ENTRIES = [C.get_weights(n) for n in C.list_weights()]


def _pth_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@functools.lru_cache(maxsize=8)
def _timm_state(name: str, in_chans: int, **kw: object) -> dict[str, torch.Tensor]:
    """Seeded random tensors under the keys and shapes of a timm model without its classifier
    (what torchgeo's files hold); built on the meta device, so no slow weight init runs."""
    with torch.device("meta"):
        shapes = timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans, **kw).state_dict()
    g = torch.Generator().manual_seed(in_chans)
    out: dict[str, torch.Tensor] = {}
    for k, v in shapes.items():
        if not v.dtype.is_floating_point:
            out[k] = torch.zeros(v.shape, dtype=v.dtype)
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(v.shape, generator=g) * 0.05
    return out


def _reference(name: str, state: dict[str, torch.Tensor], in_chans: int, **kw: object) -> nn.Module:
    """The timm model holding ``state`` (dynamic image size, like rs-vit's encoders)."""
    if "vit" in name:
        kw = {**kw, "dynamic_img_size": True}
    with torch.device("meta"):
        m = timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans, **kw)
    m.load_state_dict(state, assign=True)
    return m.eval()


def _published(entry: C.WeightsEntry) -> tuple[object, dict[str, torch.Tensor]]:
    """(object saved in the entry's published layout, the same tensors in timm layout)."""
    n = len(entry.bands)
    kw = {"img_size": 224} if entry.encoder.endswith("dinov2") else {}
    state = _timm_state(entry.encoder, n, **kw)
    if entry.converter == "mae":  # MAE encoder + decoder + mask token
        pub = dict(state)
        pub.update({"mask_token": torch.zeros(1, 1, 128), "decoder_embed.weight": torch.randn(128, 384),
                    "decoder_pos_embed": torch.zeros(1, 197, 128), "decoder_blocks.0.norm1.weight": torch.ones(128),
                    "decoder_pred.weight": torch.randn(16 * 16 * n, 128)})
        return {"model": pub, "epoch": 99}, state
    if entry.converter == "dinov2":  # DINOv2-style: mask token next to the encoder tensors
        return {**state, "mask_token": torch.zeros(1, 384)}, state
    return state, state


def _tiny(name: str) -> C.WeightsEntry:
    """Entry ``name`` at ViT-Tiny width (same bands, download location and converter), for tests
    of the band policy and download paths that need no ViT-S."""
    entry = dataclasses.replace(C.get_weights(name), name=f"{name}_tiny_test", encoder="vit_tiny_patch16_224",
                                models=("segmenter_vit_tiny", "setr_pup_vit_tiny"), model_kwargs={})
    return C.register_weights(entry, replace=True)


def _install(entry: C.WeightsEntry, obj: object, cache: Path) -> None:
    add_file(cache, entry.hf_repo, entry.hf_filename, _pth_bytes(obj), revision=entry.hf_revision)


def _model_for(entry: C.WeightsEntry) -> str:
    return "segmenter_vit_small" if "segmenter_vit_small" in entry.models else entry.models[0]


def _encoder_out(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        if hasattr(model.encoder, "model"):  # rs-vit token encoder around a timm ViT
            return model.encoder.model.forward_features(x)
        return model.encoder(x)[-1]  # smp ResNet encoder: deepest stage


# -- the catalogue as data -------------------------------------------------------------------------

@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_entry_is_complete_and_consistent(entry: C.WeightsEntry) -> None:
    from rs_vit.io.bands import normalize_name
    from rs_vit.models.convert import CONVERTERS

    assert entry.converter in CONVERTERS
    assert entry.licence and entry.citation and entry.units and entry.pos_embed
    assert entry.hf_repo or entry.url or "manual" in entry.notes.lower() or "by hand" in entry.notes
    for b, w in zip(entry.bands, entry.wavelengths):
        assert normalize_name(b) == b, f"{b} is not a canonical band name"
        assert abs(C.WAVELENGTHS[b] - w) < 0.03, (b, w)
    assert len(set(entry.bands)) == len(entry.bands)
    for m in entry.models:  # registered, and built on the entry's architecture
        e = get_entry(m)
        if "encoder" not in entry.model_kwargs:
            assert entry.encoder in e.source, (m, e.source)
    if entry.mean:
        assert len(entry.mean) == len(entry.std) == len(entry.bands) and min(entry.std) > 0


def test_families_pick_the_member_that_fits_the_model() -> None:
    assert C.get_weights("ssl4eo_s12_moco", model="unet_resnet50").name == "ssl4eo_s12_rn50_moco"
    assert C.get_weights("ssl4eo_s12_moco", model="segmenter_vit_small").name == "ssl4eo_s12_vits16_moco"
    with pytest.raises(ModelError, match="No ssl4eo_s12_moco weights fit model segformer_b0"):
        C.get_weights("ssl4eo_s12_moco", model="segformer_b0")
    with pytest.raises(ModelError, match="Did you mean 'ssl4eo_s12_rn50_moco'"):
        C.get_weights("ssl4eo_s12_rn50_mocco")
    with pytest.raises(ModelError, match="do not fit model segformer_b0; use one of unet_resnet50"):
        C.check_model(C.get_weights("satlas_s2_rn50_si_ms"), "segformer_b0")
    assert C.check_model(C.get_weights("prithvi_eo_v2_300m"), "setr_pup_vit_base") == {"encoder": "vit_large_patch16_224"}


def test_normalisation_folds_scaling_and_statistics_into_raw_units() -> None:
    s2 = C.get_weights("ssl4eo_s12_vits16_moco").raw_stats(["red", "nir"])
    assert s2 == {"red": (0.0, 10000.0), "nir": (0.0, 10000.0)}
    pr = C.get_weights("prithvi_eo_v2_300m").raw_stats(["nir08", "red"])
    assert pr == {"nir08": (2734.0, 1850.0), "red": (1433.0, 2178.0)}
    sat = C.get_weights("satlas_s2_rn50_si_ms").raw_stats(["red", "swir22"])
    assert sat == {"red": (0.0, 3000.0), "swir22": (0.0, 8160.0)}
    sc = C.get_weights("softcon_s2_vits14").raw_stats(["red"])["red"]  # (x - (m - 2s)) / 4s
    assert sc == pytest.approx((1373.1 - 2 * 1144.9, 4 * 1144.9))
    mean, std, rec = C.normalization(C.get_weights("ssl4eo_s12_vits16_moco"), ["red", "vv"], [5.0, -12.0], [2.0, 3.0])
    assert (mean, std) == ([0.0, -12.0], [10000.0, 3.0])
    assert rec["from_weights"] == ["red"] and rec["from_data"] == ["vv"] and rec["source"] == "weights:ssl4eo_s12_vits16_moco"
    mean, std, rec = C.normalization(C.get_weights("dofa_vitb16"), ["red", "vv"], [5.0, -12.0], [2.0, 3.0])
    assert (mean, std) == ([5.0, -12.0], [2.0, 3.0]) and rec["source"] == "data" and "no statistics" in rec["why"]


# -- every entry through the real download path -----------------------------------------------------

HF_ENTRIES = [e for e in ENTRIES if e.hf_repo and e.converter in ("timm", "dinov2")]


@pytest.mark.parametrize("entry", HF_ENTRIES, ids=lambda e: e.name)
def test_hf_entry_loads_offline_from_the_hub_cache(entry: C.WeightsEntry, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    use_hub_cache(monkeypatch, tmp_path / "hub")
    pub, state = _published(entry)
    _install(entry, pub, tmp_path / "hub")
    name = _model_for(entry)
    model = create_model(name, in_channels=len(entry.bands), num_classes=2, pretrained=entry.name,
                         band_names=list(entry.bands), **entry.model_kwargs).eval()
    rep = model.rs_vit_init_reports[0]
    landed = len(rep.loaded) + len(rep.adapted) + len(rep.resampled)
    assert landed == len(state) and not rep.skipped  # every published encoder tensor lands, by name
    (conv_key, origin), = rep.adapted.items()
    assert origin == {b: b for b in entry.bands}  # each band from its own pretrained channel
    assert any(line.startswith(f"weights {entry.name}") for line in model.rs_vit_init_lines)
    if entry.name in ("ssl4eo_s12_vits16_moco", "softcon_s2_vits14"):  # ResNet-50: the MoCo test below
        kw = {"img_size": 224} if entry.encoder.endswith("dinov2") else {}
        ref = _reference(entry.encoder, state, len(entry.bands), **kw)
        side = 4 * (entry.patch_size or 16)
        x = torch.randn(2, len(entry.bands), side, side)
        with torch.no_grad():
            want = ref.forward_features(x)
        torch.testing.assert_close(_encoder_out(model, x), want, atol=1e-4, rtol=1e-4)


def test_missing_from_the_offline_cache_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_hub_cache(monkeypatch, tmp_path / "empty")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set.*weights_source: ssl4eo_s12_rn50_moco"):
        create_model("unet_resnet50", in_channels=13, num_classes=2, pretrained="ssl4eo_s12_moco",
                     band_names=list(C.S2_L1C))


def test_manual_entry_without_a_file_is_refused_with_its_instructions() -> None:
    with pytest.raises(ModelError, match="no automatic download.*Google Drive"):
        C.fetch(C.get_weights("ssl4eo_s12_vits16_mae"))


def test_mae_backbone_file_with_weights_source(tmp_path: Path) -> None:
    entry = C.get_weights("ssl4eo_s12_vits16_mae")
    pub, state = _published(entry)
    f = tmp_path / "B13_vits16_mae_ep99_enc.pth"
    torch.save(pub, f)
    model = create_model("setr_pup_vit_small", in_channels=13, num_classes=2, pretrained=entry.name,
                         weights=str(f), band_names=list(C.S2_L1C))
    rep = model.rs_vit_init_reports[0]
    text = " ".join(model.rs_vit_init_lines)
    pruned = 2 if "not used by this model (pruned): norm.weight, norm.bias" in text else 0  # SETR runs no final norm
    assert len(rep.loaded) + len(rep.adapted) + pruned == len(state) and not rep.skipped
    assert "dropped on purpose (5" in text  # decoder + mask token


def test_original_moco_and_dino_layouts_load_with_weights_source(tmp_path: Path) -> None:
    """The publishers' own checkpoints: MoCo v2 query encoder + MLP head + key encoder + queue,
    DINO's teacher with its backbone prefix and projection head."""
    rn = _timm_state("resnet50", 13)
    moco = {f"module.encoder_q.{k}": v for k, v in rn.items()}
    moco.update({f"module.encoder_k.{k}": v for k, v in list(rn.items())[:5]})
    moco.update({"module.encoder_q.fc.0.weight": torch.randn(2048, 2048), "module.encoder_q.fc.2.weight":
                 torch.randn(128, 2048), "module.queue": torch.randn(128, 16), "module.queue_ptr": torch.zeros(1)})
    f = tmp_path / "B13_rn50_moco_0099_ckpt.pth"
    torch.save({"epoch": 100, "arch": "resnet50", "state_dict": moco}, f)
    model = create_model("unet_resnet50", in_channels=13, num_classes=2, pretrained="ssl4eo_s12_rn50_moco",
                         weights=str(f), band_names=list(C.S2_L1C)).eval()
    x = torch.randn(1, 13, 64, 64)
    with torch.no_grad():
        want = _reference("resnet50", rn, 13).forward_features(x)
    torch.testing.assert_close(_encoder_out(model, x), want, atol=1e-4, rtol=1e-4)

    vit = _timm_state("vit_tiny_patch16_224", 13)  # the DINO layout at ViT-Tiny width
    dino = {"teacher": {**{f"backbone.{k}": v for k, v in vit.items()}, "head.mlp.0.weight": torch.randn(8, 192)},
            "student": {f"module.backbone.{k}": v for k, v in vit.items()}, "epoch": 100}
    f2 = tmp_path / "B13_vits16_dino_0099_ckpt.pth"
    torch.save(dino, f2)
    model = create_model("segmenter_vit_tiny", in_channels=13, num_classes=2,
                         pretrained=_tiny("ssl4eo_s12_vits16_dino").name, weights=str(f2), band_names=list(C.S2_L1C))
    rep = model.rs_vit_init_reports[0]
    assert len(rep.loaded) + len(rep.adapted) == len(vit) and not rep.skipped


def test_band_policy_l2a_scene_and_extra_band(tmp_path: Path) -> None:
    """Copied by name; the weights' B10 (absent from an L2A scene) is dropped, not zero-filled;
    a band the weights lack starts by band_init and is named in a warning."""
    entry = _tiny("ssl4eo_s12_vits16_moco")
    state = _timm_state("vit_tiny_patch16_224", 13)
    f = tmp_path / "w.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(f))
    scene = ["vv", *[b for b in C.S2_L1C if b != "cirrus"]]  # L2A (12 bands) + a SAR band first
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = create_model("segmenter_vit_tiny", in_channels=len(scene), num_classes=2, pretrained=entry.name,
                             weights=str(f), band_names=scene, band_init="zero")
    msgs = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any("no kernels for band(s) vv" in m for m in msgs)
    w = model.encoder.model.patch_embed.proj.weight.detach()
    src = state["patch_embed.proj.weight"]
    for i, b in enumerate(scene):
        if b == "vv":
            assert torch.count_nonzero(w[:, i]) == 0
        else:
            assert torch.equal(w[:, i], src[:, C.S2_L1C.index(b)]), b
    text = "\n".join(model.rs_vit_init_lines)
    assert "weight bands the scene lacks (their kernels dropped): cirrus" in text
    assert "initialised with zeros: vv" in text and "no B10 (cirrus)" in text


def test_unnamed_bands_and_wrong_architecture_are_refused(tmp_path: Path) -> None:
    entry = _tiny("ssl4eo_s12_vits16_moco")
    f = tmp_path / "w.pth"
    torch.save(_timm_state("vit_tiny_patch16_224", 13), f)
    with pytest.raises(ModelError, match="unnamed; name them with --sensor or --bands"):
        create_model("segmenter_vit_tiny", in_channels=13, num_classes=2, pretrained=entry.name,
                     weights=str(f), band_names=[f"band{i + 1}" for i in range(13)])
    torch.save(_timm_state("resnet18", 13), f)  # another architecture's file
    with pytest.raises(ModelError, match="fit this model; the weights are vit_tiny_patch16_224: build one of "
                                         "segmenter_vit_tiny"):
        create_model("segmenter_vit_tiny", in_channels=13, num_classes=2, pretrained=entry.name,
                     weights=str(f), band_names=list(C.S2_L1C))


# -- SatlasPretrain Swin-v2-T (torchvision layout) -----------------------------------------------------

@functools.lru_cache(maxsize=1)
def _torchvision_swinv2_t() -> nn.Module:
    """torchvision's Swin-v2-T with Satlas' 9-band first layer (as torchgeo builds it), seeded."""
    import torchvision

    with torch.device("meta"):  # no slow weight init: seeded random values are set below
        tv = torchvision.models.swin_v2_t()
        tv.features[0][0] = nn.Conv2d(9, 96, kernel_size=4, stride=4)
    tv = tv.to_empty(device="cpu")
    g = torch.Generator().manual_seed(0)
    for n, p in tv.named_parameters():  # non-trivial norms, biases and scales, so a wrong mapping shows
        p.data.copy_(torch.randn(p.shape, generator=g) * 0.05 + (1.0 if n.endswith("norm1.weight") or
                                                                  n.endswith("norm2.weight") else 0.0))
    for m in tv.modules():  # the relative-position tables torchvision computes at construction
        if hasattr(m, "define_relative_position_index"):
            m.define_relative_position_bias_table()  # Swin-v2: the log-spaced coordinates table
            m.define_relative_position_index()
    return tv.eval()


@pytest.mark.heavy
@pytest.mark.parametrize("name", ["satlas_s2_swinv2t_si_ms", "satlas_s2_swinv2t_mi_ms"])
def test_satlas_swin_v2_converts_from_torchvision_and_computes_the_same(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = C.get_weights(name)
    tv = _torchvision_swinv2_t()
    use_hub_cache(monkeypatch, tmp_path / "hub")
    _install(entry, tv.state_dict(), tmp_path / "hub")
    if name.endswith("_mi_ms"):  # same architecture as _si_ms (built below): download + convert only
        from rs_vit.models.convert import ConvertContext, convert

        conv = convert(entry.converter, C.read_file(C.fetch(entry)), ConvertContext())
        assert len(conv.state) == 217 and "layers.3.downsample.reduction.weight" in conv.state
        assert torch.equal(conv.state["layers.0.blocks.1.attn.v_bias"], tv.state_dict()["features.1.1.attn.qkv.bias"][192:])
        return
    model = create_model("smp_model", in_channels=9, num_classes=2, pretrained=entry.name,
                         band_names=list(entry.bands), **entry.model_kwargs).eval()
    rep = model.rs_vit_init_reports[0]
    assert not rep.skipped and len(rep.loaded) + len(rep.adapted) == 217  # every converted tensor
    x = torch.randn(1, 9, 256, 256)
    with torch.no_grad():
        h, want = x, []
        for i, f in enumerate(tv.features):
            h = f(h)
            if i % 2 == 1:  # the end of each stage
                want.append(h.permute(0, 3, 1, 2))
        got = [f for f in model.encoder(x) if f.shape[1] in (96, 192, 384, 768)]
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)


# -- Prithvi-EO-2.0 (3-D patch embedding, encoder./decoder. layout) -----------------------------------

class _PrithviRef(nn.Module):
    """Prithvi-EO-2.0's encoder as published (keys ``encoder.*``), at a reduced width."""

    def __init__(self, dim: int, depth: int, heads: int, frames: int = 4, tl: bool = False) -> None:
        super().__init__()
        from timm.models.vision_transformer import Block

        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(6, dim, kernel_size=(1, 16, 16), stride=(1, 16, 16))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.register_buffer("pos_embed", sincos_3d(dim, (frames, 14, 14)))
        self.blocks = nn.ModuleList(Block(dim, heads, 4.0, qkv_bias=True, norm_layer=nn.LayerNorm)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        if tl:
            self.temporal_embed_enc = nn.Module()
            self.temporal_embed_enc.scale = nn.Parameter(torch.full((1,), 0.1))
            self.location_embed_enc = nn.Module()
            self.location_embed_enc.scale = nn.Parameter(torch.full((1,), 0.1))
        for p in self.norm.parameters():  # non-trivial norms, so a wrong mapping shows
            nn.init.normal_(p, 1.0, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # one frame (B, C, H, W)
        x = self.patch_embed.proj(x.unsqueeze(2)).flatten(2).transpose(1, 2)
        n = x.shape[1]
        x = x + self.pos_embed[:, 1:1 + n]  # tokens run (t, h, w): frame 0 first
        x = torch.cat([self.cls_token + self.pos_embed[:, :1], x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


@pytest.mark.parametrize("name", ["prithvi_eo_v2_300m", pytest.param("prithvi_eo_v2_300m_tl", marks=pytest.mark.heavy)])
def test_prithvi_layout_converts_and_computes_the_same(name: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    real = C.get_weights(name)
    test_entry = dataclasses.replace(real, name=f"{name}_tiny_test", encoder="vit_tiny_patch16_224",
                                     models=("segmenter_vit_tiny",), model_kwargs={})
    C.register_weights(test_entry, replace=True)
    torch.manual_seed(0)
    ref = _PrithviRef(192, 12, 3, tl=name.endswith("tl")).eval()
    published = {f"encoder.{k}": v for k, v in ref.state_dict().items()}
    published.update({"decoder.decoder_embed.weight": torch.randn(64, 192), "decoder.mask_token": torch.zeros(1, 1, 64),
                      "decoder.decoder_pred.weight": torch.randn(6 * 256, 64)})
    use_hub_cache(monkeypatch, tmp_path / "hub")
    add_file(tmp_path / "hub", real.hf_repo, real.hf_filename, _pth_bytes(published))  # main revision
    model = create_model("segmenter_vit_tiny", in_channels=6, num_classes=2, pretrained=test_entry.name,
                         band_names=list(real.bands)).eval()
    rep = model.rs_vit_init_reports[0]
    assert not rep.skipped and rep.adapted
    x = torch.randn(1, 6, 224, 224)
    with torch.no_grad():
        want = ref(x)
    # Prithvi's LayerNorm eps is 1e-5, timm's ViT 1e-6: equal to about 1e-4
    torch.testing.assert_close(_encoder_out(model, x), want, atol=2e-3, rtol=1e-3)
    assert "3-D patch embedding" in " ".join(model.rs_vit_init_lines)


# -- DOFA (wavelength-conditioned patch embedding, baked) ----------------------------------------------

class _DofaEmbedRef(nn.Module):
    """DOFA's dynamic patch embedding as published (torchgeo's DOFAEmbedding parameter names)."""

    def __init__(self, embed: int, k: int = 16, dim: int = 128) -> None:
        super().__init__()
        self.k, self.embed, self.dim = k, embed, dim
        self.weight_generator = nn.Module()
        wg = self.weight_generator
        layer = nn.TransformerEncoderLayer(d_model=dim, nhead=4, activation="gelu", norm_first=False,
                                           batch_first=False, dropout=0.0)
        wg.transformer_encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        wg.fc_weight = nn.Linear(dim, k * k * embed)
        wg.fc_bias = nn.Linear(dim, embed)
        wg.weight_tokens = nn.Parameter(torch.randn(128, dim) * 0.02)
        wg.bias_token = nn.Parameter(torch.randn(1, dim) * 0.02)
        self.fclayer = nn.Module()
        self.fclayer.w1 = nn.Linear(dim, dim)
        self.fclayer.w2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, wavelengths: list[float]) -> torch.Tensor:
        wv = torch.tensor(wavelengths) * 1000
        omega = 1.0 / 10000 ** (torch.arange(self.dim // 2, dtype=torch.float32) / (self.dim / 2.0))
        out = torch.einsum("m,d->md", wv, omega)
        waves = torch.cat([out.sin(), out.cos()], dim=1)
        waves = waves + F.relu(self.fclayer.w2(F.relu(self.fclayer.w1(waves))))
        wg = self.weight_generator
        seq = wg.transformer_encoder(torch.cat([wg.weight_tokens, waves, wg.bias_token], dim=0))
        weight = wg.fc_weight(seq[128:-1] + waves).view(len(wavelengths), self.k, self.k, self.embed)
        bias = wg.fc_bias(seq[-1]).view(self.embed) * 0.01
        weight = weight.permute(3, 0, 1, 2) * 0.01
        return F.conv2d(x, weight, bias=bias, stride=self.k, padding=1)


def test_dofa_bakes_its_patch_embedding_for_the_run_wavelengths(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real = C.get_weights("dofa_vitb16")
    test_entry = dataclasses.replace(real, name="dofa_tiny_test", encoder="vit_tiny_patch16_224",
                                     models=("segmenter_vit_tiny",))
    C.register_weights(test_entry, replace=True)
    torch.manual_seed(0)
    emb = _DofaEmbedRef(192).eval()
    vit = _timm_state("vit_tiny_patch16_224", 3)
    published = {k: v for k, v in vit.items() if not k.startswith("patch_embed.")}
    published.update({f"patch_embed.{k}": v for k, v in emb.state_dict().items()})
    use_hub_cache(monkeypatch, tmp_path / "hub")
    _install(real, published, tmp_path / "hub")
    bands = ["blue", "green", "red", "nir", "swir16"]
    model = create_model("segmenter_vit_tiny", in_channels=5, num_classes=2, pretrained=test_entry.name,
                         band_names=bands).eval()
    rep = model.rs_vit_init_reports[0]
    assert not rep.skipped and list(rep.adapted.values())[0] == {b: b for b in bands}
    x = torch.randn(1, 5, 64, 64)
    proj = model.encoder.model.patch_embed.proj
    with torch.no_grad():
        want = emb(x, [C.WAVELENGTHS[b] for b in bands])  # DOFA: padding 1 -> grid shifted by 1 px
        got = F.conv2d(F.pad(x, (1, 1, 1, 1)), proj.weight, proj.bias, stride=16)[..., : want.shape[-2], : want.shape[-1]]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    for k in ("blocks.0.attn.qkv.weight", "cls_token", "pos_embed"):
        torch.testing.assert_close(model.encoder.model.state_dict()[k], vit[k])
    with pytest.raises(ModelError, match="wavelengths.*name the bands"):
        create_model("segmenter_vit_tiny", in_channels=2, num_classes=2, pretrained=test_entry.name,
                     band_names=["band1", "band2"])


# -- URL entries: a loopback HTTP server and torch's hub cache -------------------------------------------

def test_url_entry_downloads_into_the_torch_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _timm_state("vit_tiny_patch16_224", 13)
    served = tmp_path / "served"
    served.mkdir()
    torch.save({"state_dict": {f"module.base_encoder.{k}": v for k, v in state.items()}},
               served / "B13_vits16_moco_0099_ckpt.pth")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/B13_vits16_moco_0099_ckpt.pth"
        entry = dataclasses.replace(_tiny("ssl4eo_s12_vits16_moco"), name="ssl4eo_url_test",
                                    hf_repo=None, hf_filename=None, hf_revision=None, url=url)
        C.register_weights(entry, replace=True)
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        model = create_model("segmenter_vit_tiny", in_channels=13, num_classes=2, pretrained=entry.name,
                             band_names=list(C.S2_L1C))
        cached = tmp_path / "torch" / "hub" / "checkpoints" / "B13_vits16_moco_0099_ckpt.pth"
        assert cached.is_file() and not model.rs_vit_init_reports[0].skipped
    finally:
        server.shutdown()
        server.server_close()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # server gone: the cached file is used, offline
    assert C.fetch(entry) == cached
    cached.unlink()
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set and .* is not cached"):
        C.fetch(entry)


# -- training: the entry's normalisation is the default and lands in the checkpoint ---------------------

def test_train_cli_starts_from_catalogue_weights_with_their_normalisation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from rs_vit.cli import app
    from rs_vit.config import load_config

    entry = _tiny("ssl4eo_s12_vits16_moco")  # same hub file name and bands, ViT-Tiny width
    use_hub_cache(monkeypatch, tmp_path / "hub")
    pub = _timm_state("vit_tiny_patch16_224", 13)
    _install(entry, pub, tmp_path / "hub")
    common = ["--image", str(DATA / "tiny_scene.tif"), "--labels", str(DATA / "tiny_labels.tif"),
              "--classes", str(DATA / "classes.yaml"), "--model", "segmenter_vit_tiny", "--epochs", "1",
              "--steps-per-epoch", "1", "--batch-size", "2", "--tile-size", "32", "--device", "cpu",
              "--precision", "fp32", "--no-progress"]
    quick = tmp_path / "quick.yaml"  # no plots, no TensorBoard: only what the test checks
    quick.write_text("train:\n  plots: false\n  tensorboard: false\n")
    res = CliRunner().invoke(app, ["train", "--config", str(quick), *common, "--pretrained", entry.name,
                                   "-o", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert f"weights {entry.name}" in res.output and "kernels dropped" in res.output
    assert "Normalisation: weights:" in res.output
    meta = json.loads((tmp_path / "run" / "best" / "rs_vit.json").read_text())
    assert meta["bands"] == ["blue", "green", "red", "nir", "swir16", "swir22"]
    assert meta["mean"] == [0.0] * 6 and meta["std"] == [10000.0] * 6  # the entry's /10000, not data stats
    assert meta["normalization"]["source"] == f"weights:{entry.name}"

    # a local file + weights_source, data statistics on request: what the loop decides
    from rs_vit.train.loop import _weights_normalization

    f = tmp_path / "local.pth"
    torch.save(pub, f)
    base = {"data.classes": [{"id": i, "name": n} for i, n in enumerate(["w", "v", "b"])],
            "model.name": "segmenter_vit_small", "model.weights": str(f),
            "model.weights_source": "ssl4eo_s12_vits16_moco"}
    bands = ["blue", "green", "red", "vv"]
    data_mean, data_std = np.array([900.0, 800.0, 700.0, -12.0]), np.array([300.0, 300.0, 300.0, 4.0])
    mean, std, wentry, kwargs, rec = _weights_normalization(load_config(None, {**base, "model.normalize": "data"}),
                                                            bands, data_mean, data_std)
    assert wentry.name == "ssl4eo_s12_vits16_moco" and rec == {"source": "data", "weights": wentry.name}
    assert list(mean) == list(data_mean) and list(std) == list(data_std)
    mean, std, _, _, rec = _weights_normalization(load_config(None, base), bands, data_mean, data_std)
    assert list(mean) == [0.0, 0.0, 0.0, -12.0] and list(std) == [10000.0, 10000.0, 10000.0, 4.0]
    assert rec["from_data"] == ["vv"]
    dofa = {"model.name": "segmenter_vit_base", "model.pretrained": "dofa", "model.normalize": "weights"}
    with pytest.raises(ConfigError, match="dofa_vitb16 has no statistics of its own"):
        _weights_normalization(load_config(None, dofa), bands, data_mean, data_std)
    with pytest.raises(ConfigError, match="normalize: weights needs catalogue weights"):
        _weights_normalization(load_config(None, {"model.normalize": "weights"}), bands, data_mean, data_std)
    with pytest.raises(ConfigError, match="weights_source describes a local file"):
        load_config(None, {"model.weights_source": "ssl4eo_s12_vits16_moco"})


def test_weights_command_lists_the_catalogue() -> None:
    from typer.testing import CliRunner

    from rs_vit.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["weights", "--markdown"])
    assert res.exit_code == 0, res.output
    for e in ENTRIES:
        if not e.name.endswith("_test"):
            assert f"`{e.name}`" in res.output
    assert "Apache-2.0" in res.output and "any (by wavelength)" in res.output
    res = runner.invoke(app, ["weights", "prithvi_eo_v2_300m"])
    assert res.exit_code == 0 and "1087, 1342" in res.output and "nir08 (B8A/B05, 0.865 µm)" in res.output
    res = runner.invoke(app, ["weights", "--model", "unet_resnet50", "--markdown"])
    assert "ssl4eo_s12_rn50_moco" in res.output and "vits16" not in res.output
    res = runner.invoke(app, ["weights", "prithvi_eo"])
    assert res.exit_code != 0 and "Unknown pretrained weights 'prithvi_eo'" in res.output
