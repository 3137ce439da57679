"""A catalogue of geospatial foundation-model weights, kept as data (timm pretrained cfgs /
torchgeo weight enums style).

Each :class:`WeightsEntry` says which architecture the weights fit (a timm encoder and the
registered rs-vit models built on it), the bands its first layer reads (rs-vit canonical names,
in channel order, with wavelengths), the input scaling and statistics it was pretrained with,
patch and image size, position-embedding type, licence, citation, where to download it (a
Hugging Face repo + file + revision, or a URL) and the key-layout converter
(:mod:`rs_vit.models.convert`) that turns the published file into timm's layout.

Loading (:func:`load_entry`) is by band name: pretrained first-layer slices are copied to the
run's bands with the same name; weight bands the scene lacks are dropped (never zero-filled);
scene bands the weights lack start by ``band_init`` and are listed in a warning.

Facts come from the publishers and torchgeo's weight enums (``torchgeo/models/{resnet,vit,swin,
dofa,prithvi}.py``); where one is uncertain the entry's ``notes`` say so.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rs_vit.errors import ModelError, suggest
from rs_vit.io.bands import normalize_name
from rs_vit.models.files import read_tensor_file

#: Centre wavelengths (µm) of rs-vit's canonical band names (Sentinel-2A MSI where the name is a
#: Sentinel-2 band; Landsat 8/9 OLI/TIRS for pan, lwir11, lwir12). Used by wavelength-conditioned
#: weights (DOFA) and listed in the catalogue. Landsat's ``nir`` (0.865 µm) is within DOFA's
#: tolerance of Sentinel-2's B8 (0.842 µm).
WAVELENGTHS: dict[str, float] = {
    "coastal": 0.443, "blue": 0.490, "green": 0.560, "red": 0.665, "rededge1": 0.705,
    "rededge2": 0.740, "rededge3": 0.783, "nir": 0.842, "nir08": 0.865, "nir09": 0.945,
    "cirrus": 1.375, "swir16": 1.610, "swir22": 2.190, "pan": 0.590, "lwir11": 10.895,
    "lwir12": 12.005, "lwir": 11.45, "yellow": 0.605, "rededge": 0.725, "nir2": 0.950,
}

S2_L1C = ("coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08",
          "nir09", "cirrus", "swir16", "swir22")
S2_L1C_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
#: SSL4EO-S12 per-band mean / std of L1C digital numbers (reflectance x 10000), as torchgeo lists them.
SSL4EO_S12_MEAN = (1612.9, 1397.6, 1322.3, 1373.1, 1561.0, 2108.4, 2390.7, 2318.7, 2581.0, 837.7,
                   22.0, 2195.2, 1537.4)
SSL4EO_S12_STD = (791.0, 854.3, 878.7, 1144.9, 1127.5, 1164.2, 1276.0, 1249.5, 1345.9, 577.5, 47.5,
                  1340.0, 1142.9)

VIT_S16_MODELS = ("setr_pup_vit_small", "setr_mla_vit_small", "segmenter_vit_small")
VIT_B16_MODELS = ("setr_naive_vit_base", "setr_pup_vit_base", "setr_mla_vit_base", "segmenter_vit_base")
RN50_MODELS = ("unet_resnet50", "deeplabv3plus_resnet50")


@dataclass(frozen=True)
class WeightsEntry:
    """One set of published weights and everything needed to use them correctly.

    Normalisation: the network was pretrained on ``((raw / divisor) - mean) / std`` per band,
    ``raw`` being the values a scene holds in the stated ``units`` (``mean``/``std`` empty: only the
    division). :meth:`raw_stats` folds this into the raw-unit mean/std rs-vit checkpoints store.

    Attributes:
        name: catalogue name (``--pretrained NAME``).
        title: one line for listings.
        encoder: timm architecture the (converted) weights fit.
        models: registered rs-vit models whose encoder is that architecture.
        model_kwargs: model options the weights need (e.g. ``encoder`` for a larger ViT); applied
            to the run's ``model.kwargs`` and recorded in the checkpoint.
        bands: canonical names of the first layer's channels, in order (empty: wavelength-
            conditioned weights that take any band with a known wavelength).
        native_bands: the publisher's band ids, same order.
        wavelengths: centre wavelengths (µm), same order.
        units: what raw values the statistics refer to (e.g. "L1C TOA reflectance x 10000").
        divisor: per band (or one for all) divisor applied to raw values.
        mean, std: per-band statistics after the division (empty: none).
        patch_size, image_size: the pretraining patch and image size.
        pos_embed: position-embedding type.
        licence, citation: terms of use and the paper to cite.
        hf_repo, hf_filename, hf_revision: Hugging Face download (preferred).
        url: direct download (used when there is no Hugging Face location).
        converter: key-layout converter (:data:`rs_vit.models.convert.CONVERTERS`).
        notes: caveats, uncertain facts, manual-download instructions.
    """

    name: str
    title: str
    encoder: str
    models: tuple[str, ...]
    bands: tuple[str, ...]
    native_bands: tuple[str, ...]
    wavelengths: tuple[float, ...]
    units: str
    divisor: tuple[float, ...]
    licence: str
    citation: str
    converter: str = "timm"
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    patch_size: int | None = 16
    image_size: int = 224
    pos_embed: str = "learned absolute (cls + 14x14)"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    hf_repo: str | None = None
    hf_filename: str | None = None
    hf_revision: str | None = None
    url: str | None = None
    notes: str = ""

    @property
    def download(self) -> str:
        """Where the file comes from, for listings."""
        if self.hf_repo:
            rev = f"@{self.hf_revision[:8]}" if self.hf_revision else ""
            return f"hf://{self.hf_repo}{rev}/{self.hf_filename}"
        return self.url or "manual download (see notes)"

    @property
    def scaling(self) -> str:
        """The input scaling in words, e.g. ``/10000`` or ``/10000, then (x - mean) / std``."""
        divs = sorted(set(self.divisor))
        div = "/" + "|".join(f"{d:g}" for d in divs) if divs != [1.0] else "raw"
        return div + (", then (x - mean) / std" if self.mean else "")

    def band_divisor(self, i: int) -> float:
        """The divisor of channel ``i``."""
        return self.divisor[i] if len(self.divisor) > 1 else self.divisor[0]

    def raw_stats(self, bands: Sequence[str]) -> dict[str, tuple[float, float]]:
        """Raw-unit (mean, std) per band of ``bands`` the weights know: ``x_norm = (raw - m) / s``."""
        out: dict[str, tuple[float, float]] = {}
        for b in bands:
            nb = normalize_name(b)
            if nb not in self.bands:
                continue
            i = self.bands.index(nb)
            d = self.band_divisor(i)
            m, s = (self.mean[i], self.std[i]) if self.mean else (0.0, 1.0)
            out[nb] = (m * d, s * d)
        return out


def _ssl4eo_s12(name: str, arch: str, method: str, *, repo: str | None, filename: str | None,
                revision: str | None, converter: str = "timm", notes: str = "",
                url: str | None = None) -> WeightsEntry:
    vit = arch == "vits16"
    return WeightsEntry(
        name=name,
        title=f"SSL4EO-S12 {'ViT-S/16' if vit else 'ResNet-50'} {method}, Sentinel-2 L1C 13 bands",
        encoder="vit_small_patch16_224" if vit else "resnet50",
        models=VIT_S16_MODELS if vit else RN50_MODELS,
        bands=S2_L1C, native_bands=S2_L1C_IDS, wavelengths=tuple(WAVELENGTHS[b] for b in S2_L1C),
        units="Sentinel-2 L1C TOA reflectance x 10000", divisor=(10000.0,),
        patch_size=16 if vit else None,
        pos_embed="learned absolute (cls + 14x14)" if vit else "none (CNN)",
        licence="CC-BY-4.0 (SSL4EO-S12 weights; code Apache-2.0)",
        citation="Wang et al., SSL4EO-S12: A large-scale multi-modal, multi-temporal dataset for "
                 "self-supervised learning in Earth observation, IEEE GRSM 2023 (arXiv:2211.07044)",
        hf_repo=repo, hf_filename=filename, hf_revision=revision, url=url, converter=converter,
        notes=notes,
    )


def _landsat(name: str, arch: str, product: str, filename: str) -> WeightsEntry:
    vit = arch == "vits16"
    if product == "oli_sr":
        bands = ("coastal", "blue", "green", "red", "nir", "swir16", "swir22")
        native = ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7")
        units = "SSL4EO-L uint8 rendering of Landsat 8/9 Collection 2 Level-2 surface reflectance"
        waves = (0.443, 0.482, 0.561, 0.655, 0.865, 1.609, 2.201)
    else:
        bands = ("coastal", "blue", "green", "red", "nir", "swir16", "swir22", "pan", "cirrus",
                 "lwir11", "lwir12")
        native = tuple(f"B{i}" for i in range(1, 12))
        units = "SSL4EO-L uint8 rendering of Landsat 8/9 Collection 2 Level-1 TOA"
        waves = (0.443, 0.482, 0.561, 0.655, 0.865, 1.609, 2.201, 0.590, 1.373, 10.895, 12.005)
    return WeightsEntry(
        name=name,
        title=f"SSL4EO-L {'ViT-S/16' if vit else 'ResNet-50'} MoCo, Landsat 8/9 "
              f"{'OLI SR 7' if product == 'oli_sr' else 'OLI/TIRS TOA 11'} bands",
        encoder="vit_small_patch16_224" if vit else "resnet50",
        models=VIT_S16_MODELS if vit else RN50_MODELS,
        bands=bands, native_bands=native, wavelengths=waves, units=units, divisor=(255.0,),
        patch_size=16 if vit else None,
        pos_embed="learned absolute (cls + 14x14)" if vit else "none (CNN)",
        licence="CC0-1.0 (as listed for SSL4EO-L by torchgeo; verify before redistribution)",
        citation="Stewart et al., SSL4EO-L: Datasets and foundation models for Landsat imagery, "
                 "NeurIPS 2023 Datasets and Benchmarks (arXiv:2306.09424)",
        hf_repo="torchgeo/ssl4eo_landsat", hf_filename=filename,
        hf_revision="1c88bb51b6e17a21dde5230738fa38b74bd74f76",
        notes="Pretrained on SSL4EO-L's 8-bit images, divided by 255 (torchgeo's transform). The "
              "conversion of Collection-2 products to those 8 bits is the dataset's (see the paper); "
              "rs-vit only divides by 255, so give scenes rendered the same way or use "
              "`normalize: data`.",
    )


_SATLAS_BANDS = ("red", "green", "blue", "rededge1", "rededge2", "rededge3", "nir", "swir16", "swir22")


def _satlas(name: str, mode: str, filename: str) -> WeightsEntry:
    return WeightsEntry(
        name=name,
        title=f"SatlasPretrain ResNet-50 {'multi' if mode == 'mi' else 'single'}-image, Sentinel-2 9 bands",
        encoder="resnet50", models=RN50_MODELS,
        bands=_SATLAS_BANDS, native_bands=("B04", "B03", "B02", "B05", "B06", "B07", "B08", "B11", "B12"),
        wavelengths=tuple(WAVELENGTHS[b] for b in _SATLAS_BANDS),
        units="Sentinel-2 L1C reflectance x 10000",
        divisor=(3000.0, 3000.0, 3000.0, 8160.0, 8160.0, 8160.0, 8160.0, 8160.0, 8160.0),
        patch_size=None, image_size=256, pos_embed="none (CNN)",
        licence="ODC-BY (SatlasPretrain models; verify on allenai/satlaspretrain_models)",
        citation="Bastani et al., SatlasPretrain: A large-scale dataset for remote sensing image "
                 "understanding, ICCV 2023 (arXiv:2211.15660)",
        hf_repo="torchgeo/satlas", hf_filename=filename,
        hf_revision="081d6607431bf36bdb59c223777cbb267131b8f2",
        notes="Satlas feeds B04/B03/B02 as the 8-bit true-colour image (TCI) / 255 and the other "
              "bands as value / 8160, clipped to 0..1. rs-vit approximates TCI / 255 by value / 3000 "
              "(TCI maps reflectance 0..0.3 to 0..255; an approximation) and does not clip. "
              + ("Multi-image weights were trained on several images max-pooled; one image works. "
                 if mode == "mi" else ""),
    )


def _satlas_swin(name: str, mode: str, filename: str) -> WeightsEntry:
    base = _satlas(name, mode, filename)
    return dataclasses.replace(
        base, title=f"SatlasPretrain Swin-v2-T {'multi' if mode == 'mi' else 'single'}-image, Sentinel-2 9 bands",
        encoder="swinv2_tiny_window8_256", models=("smp_model",),
        model_kwargs={"arch": "UPerNet", "encoder": "tu-swinv2_tiny_window8_256"},
        patch_size=4, pos_embed="relative (continuous log-spaced position bias, window 8)",
        converter="torchvision_swinv2",
        notes=base.notes + "Swin-v2-T in torchvision's layout, converted to timm's swinv2_tiny_window8_256 "
              "inside smp's UPerNet (model smp_model with model.kwargs arch UPerNet, encoder "
              "tu-swinv2_tiny_window8_256, applied automatically); tiles: multiples of 256 keep every "
              "stage a whole number of 8x8 windows.",
    )


def _prithvi(name: str, filename: str, tl: bool) -> WeightsEntry:
    bands = ("blue", "green", "red", "nir08", "swir16", "swir22")
    return WeightsEntry(
        name=name,
        title=f"Prithvi-EO-2.0 300M{' TL' if tl else ''} ViT-L/16, HLS 6 bands",
        encoder="vit_large_patch16_224", models=VIT_B16_MODELS,
        model_kwargs={"encoder": "vit_large_patch16_224"},
        bands=bands, native_bands=("B02", "B03", "B04", "B8A/B05", "B11/B06", "B12/B07"),
        wavelengths=(0.490, 0.560, 0.665, 0.865, 1.610, 2.190),
        units="HLS surface reflectance x 10000", divisor=(1.0,),
        mean=(1087.0, 1342.0, 1433.0, 2734.0, 1958.0, 1363.0),
        std=(2248.0, 2179.0, 2178.0, 1850.0, 1242.0, 1049.0),
        patch_size=16, image_size=224,
        pos_embed="fixed 3-D sin-cos (time x 14 x 14), one frame used",
        licence="Apache-2.0",
        citation="Szwarcman et al., Prithvi-EO-2.0: A versatile multi-temporal foundation model for "
                 "Earth observation applications, 2024 (arXiv:2412.02732)",
        hf_repo=f"ibm-nasa-geospatial/{'Prithvi-EO-2.0-300M-TL' if tl else 'Prithvi-EO-2.0-300M'}",
        hf_filename=filename, hf_revision=None, converter="prithvi",
        notes="ViT-L/16 (300 M parameters) on the rs-vit *_vit_base models with encoder "
              "vit_large_patch16_224 (applied automatically; GPU size). Prithvi's LayerNorm uses "
              "eps 1e-5, timm's ViT 1e-6 (a negligible difference). Bands are HLS: the narrow NIR "
              "is Sentinel-2 B8A (nir08) / Landsat OLI B5: name a Landsat scene's B5 'nir08' with "
              "--bands. Downloaded from the main revision (no commit pinned)."
              + (" The temporal and location encoders are dropped (single-frame input)." if tl else ""),
    )


def _dofa(name: str, size: str, filename: str) -> WeightsEntry:
    big = size == "large"
    return WeightsEntry(
        name=name,
        title=f"DOFA ViT-{'L' if big else 'B'}/16, any bands (wavelength-conditioned patch embedding)",
        encoder="vit_large_patch16_224" if big else "vit_base_patch16_224", models=VIT_B16_MODELS,
        model_kwargs={"encoder": "vit_large_patch16_224"} if big else {},
        bands=(), native_bands=(), wavelengths=(),
        units="any (per-sensor statistics)", divisor=(1.0,),
        patch_size=16, image_size=224, pos_embed="fixed 2-D sin-cos (cls + 14x14)",
        licence="CC-BY-4.0",
        citation="Xiong et al., Neural plasticity-inspired multimodal foundation model for Earth "
                 "observation (DOFA), 2024 (arXiv:2403.15356)",
        hf_repo="torchgeo/dofa", hf_filename=filename,
        hf_revision="b8db318b64a90b9e085ec04ba8851233c5893666", converter="dofa",
        notes="The first layer is generated from the run's band wavelengths (WAVELENGTHS table) and "
              "baked into a fixed convolution, so every named band gets a pretrained kernel. DOFA "
              "normalises each sensor with its own dataset statistics, so the default normalisation "
              "is the training data's statistics. DOFA's patch convolution pads by 1 px; the baked "
              "one uses the standard grid (a 1-pixel shift)."
              + (" ViT-L: applied as encoder vit_large_patch16_224 (GPU size)." if big else ""),
    )


_ENTRIES: dict[str, WeightsEntry] = {}


def register_weights(entry: WeightsEntry, *, replace: bool = False) -> WeightsEntry:
    """Add an entry (e.g. a private set of weights described the same way) to the catalogue."""
    if entry.name in _ENTRIES and not replace:
        raise ValueError(f"weights {entry.name!r} are registered twice")
    if entry.bands and not (len(entry.bands) == len(entry.native_bands) == len(entry.wavelengths)):
        raise ValueError(f"{entry.name}: bands, native_bands and wavelengths differ in length")
    if len(entry.divisor) not in (1, len(entry.bands)) or (entry.mean and len(entry.mean) != len(entry.bands)):
        raise ValueError(f"{entry.name}: divisor/mean/std must have one value per band")
    _ENTRIES[entry.name] = entry
    return entry


for _e in (
    _ssl4eo_s12("ssl4eo_s12_vits16_moco", "vits16", "MoCo v3",
                repo="torchgeo/vit_small_patch16_224_sentinel2_all_moco",
                filename="vit_small_patch16_224_sentinel2_all_moco-67c9032d.pth",
                revision="1cb683f6c14739634cdfaaceb076529adf898c74"),
    _ssl4eo_s12("ssl4eo_s12_vits16_dino", "vits16", "DINO",
                repo="torchgeo/vit_small_patch16_224_sentinel2_all_dino",
                filename="vit_small_patch16_224_sentinel2_all_dino-36bcc127.pth",
                revision="5b41dd418a79de47ac9f5be3e035405a83818a62"),
    _ssl4eo_s12("ssl4eo_s12_vits16_mae", "vits16", "MAE", repo=None, filename=None, revision=None,
                converter="mae",
                notes="Published only as Google Drive links in the SSL4EO-S12 README (no automatic "
                      "download): fetch the 'backbone' file by hand and use `weights: FILE` with "
                      "`weights_source: ssl4eo_s12_vits16_mae`. The MAE decoder and mask token are "
                      "dropped. The 'full ckpt' also pickles training arguments, which safe loading "
                      "refuses: use the backbone file."),
    _ssl4eo_s12("ssl4eo_s12_rn50_moco", "rn50", "MoCo v2",
                repo="torchgeo/resnet50_sentinel2_all_moco",
                filename="resnet50_sentinel2_all_moco-df8b932e.pth",
                revision="da4f3c9dbe09272eb902f3b37f46635fa4726879",
                notes="torchgeo's copy, already in timm layout. The original MoCo checkpoint "
                      "(module.encoder_q.* keys, with the MLP head) loads too with `weights: FILE` "
                      "and `weights_source: ssl4eo_s12_rn50_moco`."),
    _ssl4eo_s12("ssl4eo_s12_rn50_dino", "rn50", "DINO",
                repo="torchgeo/resnet50_sentinel2_all_dino",
                filename="resnet50_sentinel2_all_dino-d6c330e9.pth",
                revision="d7f14bf5530d70ac69d763e58e77e44dbecfec7c"),
    _landsat("ssl4eo_l_oli_sr_vits16_moco", "vits16", "oli_sr", "vits16_landsat_oli_sr_moco-c9b8898d.pth"),
    _landsat("ssl4eo_l_oli_sr_rn50_moco", "rn50", "oli_sr", "resnet50_landsat_oli_sr_moco-ff580dad.pth"),
    _landsat("ssl4eo_l_oli_tirs_toa_vits16_moco", "vits16", "oli_tirs_toa",
             "vits16_landsat_oli_tirs_toa_moco-c7c2cceb.pth"),
    WeightsEntry(
        name="softcon_s2_vits14",
        title="SoftCon ViT-S/14 (DINOv2-style), Sentinel-2 L1C 13 bands",
        encoder="vit_small_patch14_dinov2", models=VIT_S16_MODELS,
        model_kwargs={"encoder": "vit_small_patch14_dinov2", "img_size": 224},
        bands=S2_L1C, native_bands=S2_L1C_IDS, wavelengths=tuple(WAVELENGTHS[b] for b in S2_L1C),
        units="Sentinel-2 L1C TOA reflectance x 10000", divisor=(1.0,),
        mean=tuple(m - 2 * s for m, s in zip(SSL4EO_S12_MEAN, SSL4EO_S12_STD)),
        std=tuple(4 * s for s in SSL4EO_S12_STD),
        patch_size=14, image_size=224, pos_embed="learned absolute (cls + 16x16)",
        licence="Apache-2.0 (as stated for zhu-xlab/softcon; verify on the model card)",
        citation="Wang et al., Multi-label guided soft contrastive learning for efficient Earth "
                 "observation pretraining, IEEE TGRS 2024 (arXiv:2405.20462)",
        hf_repo="wangyi111/softcon", hf_filename="B13_vits14_softcon.pth", hf_revision=None,
        converter="dinov2",
        notes="SoftCon's recommended input: (x - (mean - 2 std)) / (4 std) with SSL4EO-S12 statistics, "
              "clipped to 0..1 (its README writes it as uint8 0..255; rs-vit assumes the network saw "
              "that image divided by 255, as ToTensor does: unverified) - not clipped here. Patch 14: "
              "use tiles that are multiples of 112 (e.g. 224). Downloaded from the main revision.",
    ),
    WeightsEntry(
        name="softcon_s2_rn50",
        title="SoftCon ResNet-50, Sentinel-2 L1C 13 bands",
        encoder="resnet50", models=RN50_MODELS,
        bands=S2_L1C, native_bands=S2_L1C_IDS, wavelengths=tuple(WAVELENGTHS[b] for b in S2_L1C),
        units="Sentinel-2 L1C TOA reflectance x 10000", divisor=(1.0,),
        mean=tuple(m - 2 * s for m, s in zip(SSL4EO_S12_MEAN, SSL4EO_S12_STD)),
        std=tuple(4 * s for s in SSL4EO_S12_STD),
        patch_size=None, image_size=224, pos_embed="none (CNN)",
        licence="Apache-2.0 (as stated for zhu-xlab/softcon; verify on the model card)",
        citation="Wang et al., Multi-label guided soft contrastive learning for efficient Earth "
                 "observation pretraining, IEEE TGRS 2024 (arXiv:2405.20462)",
        hf_repo="wangyi111/softcon", hf_filename="B13_rn50_softcon.pth", hf_revision=None,
        notes="torchvision ResNet-50 layout (same names as timm). Normalisation as softcon_s2_vits14 "
              "(same caveat). Downloaded from the main revision.",
    ),
    _satlas("satlas_s2_rn50_si_ms", "si", "sentinel2_resnet50_si_ms-1f454cc6.pth"),
    _satlas("satlas_s2_rn50_mi_ms", "mi", "sentinel2_resnet50_mi_ms-da5413d2.pth"),
    _satlas_swin("satlas_s2_swinv2t_si_ms", "si", "sentinel2_swint_si_ms-bc68e396.pth"),
    _satlas_swin("satlas_s2_swinv2t_mi_ms", "mi", "sentinel2_swint_mi_ms-d8c659e3.pth"),
    _prithvi("prithvi_eo_v2_300m", "Prithvi_EO_V2_300M.pt", tl=False),
    _prithvi("prithvi_eo_v2_300m_tl", "Prithvi_EO_V2_300M_TL.pt", tl=True),
    _dofa("dofa_vitb16", "base", "dofa_base_patch16_224-a0275954.pth"),
    _dofa("dofa_vitl16", "large", "dofa_large_patch16_224-0ff904d3.pth"),
):
    register_weights(_e)

#: Family names that pick the member fitting the run's model (``--pretrained ssl4eo_s12_moco``
#: with ``unet_resnet50`` is ``ssl4eo_s12_rn50_moco``, with ``segmenter_vit_small`` the ViT-S/16).
FAMILIES: dict[str, tuple[str, ...]] = {
    "ssl4eo_s12_moco": ("ssl4eo_s12_rn50_moco", "ssl4eo_s12_vits16_moco"),
    "ssl4eo_s12_dino": ("ssl4eo_s12_rn50_dino", "ssl4eo_s12_vits16_dino"),
    "ssl4eo_s12_mae": ("ssl4eo_s12_vits16_mae",),
    "ssl4eo_l_moco": ("ssl4eo_l_oli_sr_rn50_moco", "ssl4eo_l_oli_sr_vits16_moco"),
    "softcon": ("softcon_s2_rn50", "softcon_s2_vits14"),
    "satlas": ("satlas_s2_rn50_si_ms", "satlas_s2_swinv2t_si_ms"),
    "prithvi": ("prithvi_eo_v2_300m",),
    "dofa": ("dofa_vitb16",),
}


def list_weights() -> list[str]:
    """Catalogue names, sorted."""
    return sorted(_ENTRIES)


def is_catalogued(name: str | None) -> bool:
    """Whether ``name`` is a catalogue entry or family (not ``imagenet`` or a timm tag)."""
    return bool(name) and (name in _ENTRIES or name in FAMILIES)


def get_weights(name: str, model: str | None = None, encoder: str | None = None) -> WeightsEntry:
    """The entry ``name`` (a family name picks the member that fits ``model`` / the timm ``encoder``).

    Raises:
        ModelError: unknown name (with the nearest one), or no member of a family fits ``model``.
    """
    if name in _ENTRIES:
        return _ENTRIES[name]
    if name in FAMILIES:
        members = [_ENTRIES[m] for m in FAMILIES[name]]
        fit = [e for e in members if (model is None or model in e.models)
               and (encoder is None or e.encoder == encoder)]
        if not fit:
            raise ModelError(
                f"No {name} weights fit model {model or encoder}; the family's models are "
                f"{', '.join(sorted({m for e in members for m in e.models}))}."
            )
        return fit[0]
    raise ModelError(
        f"Unknown pretrained weights {name!r}.{suggest(name, list(_ENTRIES) + list(FAMILIES))} "
        f"Use 'imagenet', a timm tag, or one of {', '.join(list_weights())} (see `rs-vit weights`)."
    )


def check_model(entry: WeightsEntry, model: str, model_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model options to build ``model`` for ``entry`` (the entry's ``model_kwargs`` under the
    run's own); raises :class:`ModelError` when the weights do not fit ``model``."""
    if model not in entry.models:
        raise ModelError(
            f"Weights {entry.name} ({entry.encoder}) do not fit model {model}; use one of "
            f"{', '.join(entry.models)}."
        )
    kwargs = {**entry.model_kwargs, **(model_kwargs or {})}
    enc = kwargs.get("encoder")
    if "encoder" in entry.model_kwargs and enc != entry.model_kwargs["encoder"]:
        raise ModelError(f"Weights {entry.name} need model.kwargs encoder {entry.model_kwargs['encoder']}, "
                         f"not {enc}.")
    return kwargs


# -- getting the file ------------------------------------------------------------------------------

def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def fetch(entry: WeightsEntry) -> Path:
    """The local path of the entry's file: downloaded (Hugging Face hub or URL) or from the cache.

    Hugging Face files go through ``huggingface_hub.hf_hub_download`` (cache ``HF_HUB_CACHE``,
    ``HF_HUB_OFFLINE`` honoured); URLs through torch's hub cache (``$TORCH_HOME/hub/checkpoints``).

    Raises:
        ModelError: no download location, or the file cannot be had (offline, network error).
    """
    hint = (f"download it where there is network, or pass the file with `weights: FILE` and "
            f"`weights_source: {entry.name}`")
    if entry.hf_repo and entry.hf_filename:
        from huggingface_hub import hf_hub_download

        try:
            return Path(hf_hub_download(entry.hf_repo, entry.hf_filename, revision=entry.hf_revision))
        except Exception as exc:  # noqa: BLE001 - hub errors come in many types
            why = ("HF_HUB_OFFLINE is set and the file is not in the Hugging Face cache" if _offline()
                   else f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'download failed'}")
            raise ModelError(f"Cannot get weights {entry.name} ({entry.download}): {why}; {hint}.") from None
    if entry.url:
        dest = Path(torch.hub.get_dir()) / "checkpoints" / entry.url.rsplit("/", 1)[-1].split("?")[0]
        if dest.is_file():
            return dest
        if _offline():
            raise ModelError(f"Cannot get weights {entry.name} ({entry.url}): HF_HUB_OFFLINE is set and "
                             f"{dest} is not cached; {hint}.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(entry.url, str(dest), progress=False)
        except Exception as exc:  # noqa: BLE001 - urllib raises many types
            raise ModelError(f"Cannot get weights {entry.name} ({entry.url}): {exc}; {hint}.") from None
        return dest
    raise ModelError(f"Weights {entry.name} have no automatic download: {entry.notes or hint}")


def read_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a published weights file, read without running code (safetensors, or
    ``torch.load(weights_only=True)``); containers such as ``teacher``/``state_dict`` are opened."""
    from rs_vit.models.convert import unwrap

    p = Path(path)
    if not p.is_file():
        raise ModelError(f"Weights file {p} does not exist; give the downloaded weights file.")
    obj = read_tensor_file(p)
    return unwrap(obj, str(p))


# -- loading into a model ---------------------------------------------------------------------------

def band_wavelengths(bands: Sequence[str] | None) -> list[float] | None:
    """Wavelengths (µm) of the run's bands, or None when any band's is unknown."""
    if not bands:
        return None
    names = [normalize_name(b) for b in bands]
    if not all(n in WAVELENGTHS for n in names):
        return None
    return [WAVELENGTHS[n] for n in names]


@dataclass
class EntryLoad:
    """What :func:`load_entry` did."""

    entry: WeightsEntry
    source: str
    copied: list[str] = field(default_factory=list)      # run bands with a pretrained slice
    initialised: list[str] = field(default_factory=list)  # run bands started by band_init
    dropped_bands: list[str] = field(default_factory=list)  # weight bands the scene lacks
    dropped_keys: list[str] = field(default_factory=list)  # heads / decoders removed on purpose
    notes: list[str] = field(default_factory=list)
    report: Any = None  # rs_vit.models.adapt.AdaptReport

    def lines(self) -> list[str]:
        """Log lines: the adaptation report, then the band policy."""
        out = list(self.report.lines()) if hasattr(self.report, "lines") else [self.report.summary()]
        if self.dropped_keys:
            out.append(f"  dropped on purpose ({len(self.dropped_keys)}: heads, decoders, momentum encoders, "
                       f"tables the model recomputes), e.g. {', '.join(self.dropped_keys[:3])}")
        if self.dropped_bands:
            out.append(f"  weight bands the scene lacks (their kernels dropped): {', '.join(self.dropped_bands)}")
        out.extend(f"  {n}" for n in self.notes)
        return out


def load_entry(
    model: nn.Module,
    entry: WeightsEntry,
    *,
    band_names: Sequence[str] | None,
    in_channels: int,
    band_init: str = "mean",
    path: str | Path | None = None,
    module: str = "",
    log: Callable[[str], None] | None = None,
) -> EntryLoad:
    """Initialise ``model`` (its ``module`` submodule) from the entry's weights, by band name.

    Args:
        model: the rs-vit model (built for ``in_channels`` bands).
        entry: the catalogue entry.
        band_names: the run's canonical band names, in input order.
        in_channels: number of input bands.
        band_init: start of bands the weights lack (see :data:`rs_vit.models.adapt.BAND_INIT`).
        path: a local file in the entry's published layout; None downloads (or uses the cache).
        module: submodule holding the encoder ("" for the whole model).
        log: receives the log lines.

    Raises:
        ModelError: the file cannot be had or read, or any converted tensor does not land.
    """
    from rs_vit.models.adapt import load_adapted
    from rs_vit.models.convert import ConvertContext, convert

    file = Path(path) if path else fetch(entry)
    source = f"{entry.name} ({file.name})"
    names = [normalize_name(b) for b in band_names] if band_names else None
    waves = band_wavelengths(names)
    ctx = ConvertContext(source=source, wavelengths=waves, image_size=entry.image_size,
                         patch_size=entry.patch_size or 16)
    conv = convert(entry.converter, read_file(file), ctx)
    if entry.bands:
        if names is None or all(n.startswith("band") and n[4:].isdigit() for n in names):
            raise ModelError(
                f"Weights {entry.name} are loaded by band name ({', '.join(entry.bands)}) but the "
                "scene's bands are unnamed; name them with --sensor or --bands."
            )
        src_bands: list[str] | None = list(entry.bands)
    else:  # wavelength-conditioned: baked for exactly the run's bands
        src_bands = list(names) if names else None
    target = model.get_submodule(module) if module else model
    fit = (f"the weights are {entry.encoder}: build one of {', '.join(entry.models)}"
           + (f" with model.kwargs {entry.model_kwargs}" if entry.model_kwargs else ""))
    try:
        report = load_adapted(target, conv.state, in_channels=in_channels, src_bands=src_bands,
                              dst_bands=names, band_init=band_init, source=source, min_fraction=0.0)
    except ModelError:  # not one tensor fits
        raise ModelError(f"{source}: none of the {len(conv.state)} tensors fit this model; {fit}.") from None
    # parts the model never runs and removed (e.g. a ViT's final norm under a SETR head) are unused
    unused = {f"{n}.{k}" if n else k for n, mod in target.named_modules()
              for k in getattr(mod, "rs_vit_dropped_keys", None) or ()}
    pruned = [k for k in report.skipped if report.prefix + k in unused]
    report.skipped = [k for k in report.skipped if k not in pruned]
    if pruned:
        conv.notes.append(f"not used by this model (pruned): {', '.join(pruned)}")
    if report.skipped:
        raise ModelError(f"{source}: {len(report.skipped)} of {len(conv.state)} tensors do not fit this "
                         f"model (e.g. {report.skipped[0]}); {fit}.")
    if not report.adapted:
        raise ModelError(f"{source}: the model's first layer did not receive the pretrained kernels; {fit}.")
    result = EntryLoad(entry=entry, source=source, dropped_keys=conv.dropped, notes=conv.notes, report=report)
    if names:
        ref = src_bands or []
        result.copied = [b for b in names if b in ref]
        result.initialised = [b for b in names if b not in ref]
        result.dropped_bands = [b for b in ref if b not in names]
    if result.initialised:
        warnings.warn(
            f"Weights {entry.name} have no kernels for band(s) {', '.join(result.initialised)}; they "
            f"start from band_init={band_init!r} (pretrained bands: {', '.join(entry.bands)}).",
            UserWarning, stacklevel=2)
    if entry.bands and "cirrus" in entry.bands and names and "cirrus" not in names and "coastal" in names:
        result.notes.append("the scene has no B10 (cirrus): an L2A product, or L1C without B10; the "
                            f"weights were pretrained on {entry.units}")
    model.rs_vit_init = "; ".join(s.strip() for s in result.lines())  # type: ignore[assignment]
    if log:
        for line in result.lines():
            log(line)
    return result


def normalization(entry: WeightsEntry, bands: Sequence[str], data_mean: Sequence[float],
                  data_std: Sequence[float]) -> tuple[list[float], list[float], dict[str, Any]]:
    """Raw-unit mean/std for the run's bands from the entry's scaling and statistics; bands the
    entry does not describe (or wavelength-conditioned entries) keep the data statistics.

    Returns:
        ``(mean, std, record)``; ``record`` is stored in the checkpoint (``ModelSpec.normalization``).
    """
    stats = entry.raw_stats(bands)
    mean, std, from_w, from_d = [], [], [], []
    for b, m, s in zip(bands, data_mean, data_std):
        nb = normalize_name(b)
        if nb in stats:
            mean.append(float(stats[nb][0]))
            std.append(float(stats[nb][1]))
            from_w.append(nb)
        else:
            mean.append(float(m))
            std.append(float(s))
            from_d.append(nb)
    if not from_w:  # e.g. DOFA: normalised per sensor with that sensor's own statistics
        return mean, std, {"source": "data", "weights": entry.name,
                           "why": f"{entry.name} has no statistics of its own for these bands"}
    record = {"source": f"weights:{entry.name}", "scaling": entry.scaling, "units": entry.units,
              "from_weights": from_w, "from_data": from_d}
    return mean, std, record


def entry_for_run(model: str, pretrained: str | None, weights_source: str | None) -> WeightsEntry | None:
    """The catalogue entry a run starts from (``weights_source``, or a catalogued ``pretrained``),
    the family member fitting ``model``; None for ImageNet / timm tags / training from scratch."""
    name = weights_source or (pretrained if is_catalogued(pretrained) else None)
    return get_weights(name, model=model) if name else None
