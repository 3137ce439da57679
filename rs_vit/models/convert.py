"""Key-layout converters: published geospatial weights → the timm layout rs-vit's encoders use.

Each catalogue entry (:mod:`rs_vit.models.catalogue`) names one converter. A converter takes the
tensors of a published file (after :func:`unwrap`) and returns a :class:`Converted`: the encoder's
tensors under timm names, the keys it dropped on purpose (heads, MAE decoders, momentum encoders)
and notes for the log. Load-time quirks live here and nowhere else (timm's ``checkpoint_filter_fn``
habit):

- ``timm``: self-supervised training wrappers are peeled off (MoCo v2 ``module.encoder_q.``, MoCo
  v3 ``module.base_encoder.``, DINO ``teacher`` / ``backbone.``, DDP ``module.``) and projection
  or classification heads dropped. Files already in timm layout pass through unchanged.
- ``mae``: as ``timm``, and the MAE decoder (``decoder_*``, ``mask_token``) is dropped.
- ``dinov2``: as ``timm`` for DINOv2-style ViTs (SoftCon); ``ls1.gamma`` already is timm's name.
- ``prithvi``: Prithvi-EO's ``encoder.`` layout: the 3-D (temporal) patch embedding
  ``(D, C, t, p, p)`` becomes a 2-D convolution, the fixed 3-D sin-cos position embedding is
  recomputed for one frame, the MAE decoder and the temporal / location encoders are dropped.
- ``torchvision_swinv2``: torchvision's Swin-v2 (SatlasPretrain) → timm's ``swinv2_*`` names.
- ``dofa``: DOFA's wavelength-conditioned patch embedding (a small transformer that generates the
  kernels from the bands' wavelengths) is run once for the run's wavelengths and *baked* into a
  conventional ``patch_embed.proj`` convolution; the generator itself is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from rs_vit.errors import ModelError


@dataclass
class Converted:
    """A converted state dict plus what the conversion dropped and why."""

    state: dict[str, torch.Tensor]
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ConvertContext:
    """What a converter may need to know about the run.

    Attributes:
        source: the weights' name or file, for messages.
        wavelengths: centre wavelengths (µm) of the run's bands, in input order (DOFA).
        image_size: the image size the entry was pretrained at (position-embedding grids).
        patch_size: the entry's patch size.
    """

    source: str = "weights"
    wavelengths: Sequence[float] | None = None
    image_size: int = 224
    patch_size: int = 16


# -- unwrapping -----------------------------------------------------------------------------------

#: Containers published checkpoints keep the weights in, most specific first (DINO keeps the
#: teacher, the network evaluated in the papers).
_CONTAINERS = ("teacher", "state_dict", "model_state_dict", "model", "module", "net", "weights")


def unwrap(obj: object, source: str = "weights") -> dict[str, torch.Tensor]:
    """The tensors of a loaded checkpoint: containers (``teacher``, ``state_dict``, ``model``, …)
    are opened; non-tensor entries (epoch, optimiser state, hyper-parameters) are ignored."""
    for _ in range(4):
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            for key in _CONTAINERS:
                if isinstance(obj.get(key), dict):
                    obj = obj[key]
                    break
            else:
                break
    if not isinstance(obj, dict):
        raise ModelError(f"{source}: holds no state dict of tensors; give the published weights file.")
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ModelError(f"{source}: holds no tensors; give the published weights file.")
    return state


#: Prefixes of the encoder inside self-supervised training wrappers, most specific first.
_ENCODER_PREFIXES = (
    "module.encoder_q.", "encoder_q.",          # MoCo v1/v2 (the query encoder; encoder_k is its EMA)
    "module.base_encoder.", "base_encoder.",    # MoCo v3 (momentum_encoder is its EMA)
    "module.backbone.", "backbone.",            # DINO / SoftCon training wrappers
    "module.",                                  # DistributedDataParallel
)

#: Top-level names of heads and training-only parts, never part of the encoder.
_HEAD_PREFIXES = ("fc.", "head.", "head_dist.", "heads.", "projector.", "predictor.", "fc_norm.")
_HEAD_NAMES = ("queue", "queue_ptr", "mask_token")


def select_encoder(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The encoder's tensors of a training checkpoint (wrapper prefix removed) and the dropped keys."""
    for prefix in _ENCODER_PREFIXES:
        picked = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if picked:
            return picked, [k for k in state if not k.startswith(prefix)]
    return dict(state), []


def drop_heads(state: dict[str, torch.Tensor], extra: Sequence[str] = ()) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Remove classification / projection heads and training-only tensors (``extra``: more prefixes)."""
    keep: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    prefixes = _HEAD_PREFIXES + tuple(extra)
    for k, v in state.items():
        if k.startswith(prefixes) or k in _HEAD_NAMES:
            dropped.append(k)
        else:
            keep[k] = v
    return keep, dropped


# -- converters -----------------------------------------------------------------------------------

def convert_timm(state: dict[str, torch.Tensor], ctx: ConvertContext) -> Converted:
    """timm layout, possibly inside a MoCo / DINO / DDP wrapper, possibly with heads."""
    enc, dropped = select_encoder(state)
    enc, heads = drop_heads(enc)
    return Converted(enc, dropped + heads)


def convert_mae(state: dict[str, torch.Tensor], ctx: ConvertContext) -> Converted:
    """An MAE checkpoint (encoder + decoder): the decoder and mask token are dropped."""
    enc, dropped = select_encoder(state)
    enc, heads = drop_heads(enc, extra=("decoder", "decoder_"))
    return Converted(enc, dropped + heads)


def convert_dinov2(state: dict[str, torch.Tensor], ctx: ConvertContext) -> Converted:
    """A DINOv2-style ViT (layer scale ``ls1.gamma``, ``mask_token``): timm names already match."""
    enc, dropped = select_encoder(state)
    enc, heads = drop_heads(enc, extra=("register_tokens", "dino_head.", "ibot_head."))
    return Converted(enc, dropped + heads)


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """1-D sin-cos embedding ``(M, dim)`` of positions (MAE / Prithvi convention: sin then cos)."""
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000 ** omega
    out = torch.einsum("m,d->md", pos.reshape(-1).to(torch.float64), omega)
    return torch.cat([out.sin(), out.cos()], dim=1)


def sincos_3d(dim: int, grid: tuple[int, int, int], cls_token: bool = True) -> torch.Tensor:
    """Prithvi-EO-2.0's fixed 3-D sin-cos position embedding ``(1, [1+] t*h*w, dim)``.

    The dimension is split 6:6:4 between width, height and time; tokens run ``(t, h, w)``.
    """
    if dim % 16:
        raise ModelError(f"A 3-D sin-cos position embedding needs a width divisible by 16, got {dim}.")
    t, h, w = grid
    dw = dh = dim // 16 * 6
    dt = dim // 16 * 4
    we = sincos_1d(dw, torch.arange(w, dtype=torch.float64)).repeat(t * h, 1)
    he = sincos_1d(dh, torch.arange(h, dtype=torch.float64)).repeat_interleave(w, dim=0).repeat(t, 1)
    te = sincos_1d(dt, torch.arange(t, dtype=torch.float64)).repeat_interleave(h * w, dim=0)
    pe = torch.cat([we, he, te], dim=1)
    if cls_token:
        pe = torch.cat([torch.zeros(1, dim, dtype=torch.float64), pe])
    return pe.unsqueeze(0).float()


def convert_prithvi(state: dict[str, torch.Tensor], ctx: ConvertContext) -> Converted:
    """Prithvi-EO-2.0 (``encoder.*`` + ``decoder.*``) → a 2-D timm ViT for single-frame input."""
    if not any(k.startswith("encoder.") for k in state):
        raise ModelError(
            f"{ctx.source}: no 'encoder.*' tensors; this is not a Prithvi-EO checkpoint (its keys "
            f"start with {sorted({k.split('.')[0] for k in state})[:4]})."
        )
    enc = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    dropped = [k for k in state if not k.startswith("encoder.")]
    notes: list[str] = []
    for k in [k for k in enc if k.startswith(("temporal_embed_enc", "location_embed_enc", "mask_token"))]:
        dropped.append("encoder." + k)
        del enc[k]
    w = enc.get("patch_embed.proj.weight")
    if w is None:
        raise ModelError(f"{ctx.source}: has no encoder.patch_embed.proj.weight; not a Prithvi-EO encoder.")
    if w.ndim == 5:
        t = w.shape[2]
        enc["patch_embed.proj.weight"] = w.sum(dim=2) if t > 1 else w[:, :, 0]
        notes.append(f"3-D patch embedding {tuple(w.shape)} -> 2-D " + (
            "(one frame: temporal kernel of size 1)" if t == 1 else
            f"(tubelet of {t} frames summed: a single image stands for {t} identical frames)"))
    dim = int(enc["patch_embed.proj.weight"].shape[0])
    g = ctx.image_size // ctx.patch_size
    enc["pos_embed"] = sincos_3d(dim, (1, g, g))
    notes.append(f"fixed 3-D sin-cos position embedding recomputed for one frame of {g}x{g} patches")
    return Converted(enc, dropped, notes)


# -- DOFA ------------------------------------------------------------------------------------------

class _FCResLayer(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(size, size)
        self.w2 = nn.Linear(size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.w2(torch.relu(self.w1(x))))


class _WeightGenerator(nn.Module):
    """DOFA's ``TransformerWeightGenerator`` (same parameter names), for baking only."""

    def __init__(self, dim: int, out_dim: int, embed_dim: int, n_tokens: int, layers: int, ff: int,
                 heads: int = 4) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model=dim, nhead=heads, dim_feedforward=ff, activation="gelu",
                                           norm_first=False, batch_first=False, dropout=0.0)
        self.transformer_encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.fc_weight = nn.Linear(dim, out_dim)
        self.fc_bias = nn.Linear(dim, embed_dim)
        self.weight_tokens = nn.Parameter(torch.zeros(n_tokens, dim))
        self.bias_token = nn.Parameter(torch.zeros(1, dim))

    def forward(self, waves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.weight_tokens.shape[0]
        x = torch.cat([self.weight_tokens, waves, self.bias_token], dim=0)
        out = self.transformer_encoder(x)
        return self.fc_weight(out[n:-1] + waves), self.fc_bias(out[-1])


#: DOFA's kernel scaler (``DOFAEmbedding.scaler``), a constant of the published model.
DOFA_SCALER = 0.01


def dofa_kernel(pe: dict[str, torch.Tensor], wavelengths: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(D, C, k, k)`` kernel and ``(D,)`` bias DOFA's patch embedding uses for these bands.

    Args:
        pe: the ``patch_embed.*`` tensors of a DOFA checkpoint, prefix removed.
        wavelengths: centre wavelengths in µm, one per input band.
    """
    need = ("weight_generator.weight_tokens", "weight_generator.fc_weight.weight",
            "weight_generator.fc_bias.weight", "fclayer.w1.weight")
    missing = [k for k in need if k not in pe]
    if missing:
        raise ModelError(f"DOFA weights lack patch_embed.{missing[0]}; not a DOFA checkpoint.")
    tokens = pe["weight_generator.weight_tokens"]
    n_tok, dim = tokens.shape
    out_dim = pe["weight_generator.fc_weight.weight"].shape[0]
    embed = pe["weight_generator.fc_bias.weight"].shape[0]
    k = math.isqrt(out_dim // embed)
    layers = len({key.split(".")[3] for key in pe if key.startswith("weight_generator.transformer_encoder.layers.")})
    ff = pe["weight_generator.transformer_encoder.layers.0.linear1.weight"].shape[0]
    gen = _WeightGenerator(dim, out_dim, embed, n_tok, layers, ff)
    fcl = _FCResLayer(dim)
    gen.load_state_dict({key[len("weight_generator."):]: v.float() for key, v in pe.items()
                         if key.startswith("weight_generator.")})
    fcl.load_state_dict({key[len("fclayer."):]: v.float() for key, v in pe.items() if key.startswith("fclayer.")})
    gen.eval()
    with torch.no_grad():
        waves = sincos_1d(dim, torch.tensor(list(wavelengths), dtype=torch.float64) * 1000).float()
        waves = fcl(waves)
        weight, bias = gen(waves)
    kernel = weight.view(len(wavelengths), k, k, embed).permute(3, 0, 1, 2).contiguous() * DOFA_SCALER
    return kernel, bias.view(embed) * DOFA_SCALER


def convert_dofa(state: dict[str, torch.Tensor], ctx: ConvertContext) -> Converted:
    """DOFA → a timm ViT whose ``patch_embed.proj`` is baked for the run's wavelengths."""
    enc, dropped = select_encoder(state)
    if not ctx.wavelengths:
        raise ModelError(
            f"{ctx.source}: DOFA generates its first layer from the bands' wavelengths, and the run's "
            "bands have none known; name the bands (e.g. --sensor sentinel2_l1c or --bands "
            "blue,green,red,nir) so their wavelengths can be looked up."
        )
    pe = {k[len("patch_embed."):]: v for k, v in enc.items() if k.startswith("patch_embed.")}
    kernel, bias = dofa_kernel(pe, ctx.wavelengths)
    for k in [k for k in enc if k.startswith("patch_embed.")]:
        dropped.append(k)
        del enc[k]
    enc["patch_embed.proj.weight"] = kernel
    enc["patch_embed.proj.bias"] = bias
    enc, heads = drop_heads(enc)
    notes = [f"patch embedding baked for wavelengths {', '.join(f'{w:g}' for w in ctx.wavelengths)} µm "
             "(DOFA pads its patch convolution by 1 px; the baked convolution uses the standard grid)"]
    return Converted(enc, dropped + heads, notes)


def convert_torchvision_swinv2(state: dict[str, torch.Tensor], ctx: ConvertContext) -> Converted:
    """torchvision's Swin-v2 layout (SatlasPretrain via torchgeo) → timm's ``swinv2_*`` layout.

    ``features.0`` is the patch embedding (conv, permute, norm); odd ``features.N`` are the stages'
    blocks, even ones (N >= 2) the patch merging that opens the next stage (timm's
    ``layers.i.downsample``). torchvision keeps one ``qkv.bias`` whose key part it zeroes at every
    forward; timm keeps ``q_bias`` and ``v_bias`` only, so the key part is dropped (exactly). The
    relative-position tables are recomputed by timm; the classifier and the final norm (a features
    encoder does not run it) are dropped.
    """
    enc, dropped = select_encoder(state)
    out: dict[str, torch.Tensor] = {}
    for k, v in enc.items():
        parts = k.split(".")
        if parts[0] != "features":
            dropped.append(k)  # head.*, norm.*
            continue
        f, rest = int(parts[1]), parts[2:]
        if f == 0:
            layer = {"0": "patch_embed.proj", "2": "patch_embed.norm"}.get(rest[0])
            if layer is None:
                dropped.append(k)
                continue
            out[f"{layer}.{'.'.join(rest[1:])}"] = v
        elif f % 2 == 1:
            stage, block, sub = (f - 1) // 2, rest[0], ".".join(rest[1:])
            base = f"layers.{stage}.blocks.{block}."
            if sub.endswith(("relative_coords_table", "relative_position_index")):
                dropped.append(k)
            elif sub == "attn.qkv.bias":
                c = v.numel() // 3
                out[base + "attn.q_bias"] = v[:c]
                out[base + "attn.v_bias"] = v[2 * c:]
            else:
                if sub.startswith("mlp."):  # torchvision MLP: 0 Linear, 1 GELU, 2 Dropout, 3 Linear
                    sub = {"0": "mlp.fc1", "3": "mlp.fc2"}[sub.split(".")[1]] + "." + sub.split(".")[2]
                out[base + sub] = v
        else:
            out[f"layers.{f // 2}.downsample.{'.'.join(rest)}"] = v
    return Converted(out, dropped, ["torchvision Swin-v2 layout converted to timm's (qkv bias split into "
                                    "q_bias and v_bias; the key bias torchvision zeroes is dropped)"])


#: Converter name → function ``(state, ctx) -> Converted``.
CONVERTERS: dict[str, Callable[[dict[str, torch.Tensor], ConvertContext], Converted]] = {
    "timm": convert_timm,
    "mae": convert_mae,
    "dinov2": convert_dinov2,
    "prithvi": convert_prithvi,
    "dofa": convert_dofa,
    "torchvision_swinv2": convert_torchvision_swinv2,
}


def convert(name: str, state: dict[str, torch.Tensor], ctx: ConvertContext) -> Converted:
    """Run the converter ``name`` (see :data:`CONVERTERS`)."""
    if name not in CONVERTERS:
        raise ModelError(f"Unknown key-layout converter {name!r}; choose one of {', '.join(CONVERTERS)}.")
    return CONVERTERS[name](state, ctx)
