"""Masked image modelling (MIM) around the encoders of rs-vit's models, for self-supervised
pretraining on the user's own unlabelled scenes (``rs-vit pretrain``).

Which method each model family gets, and why:

- **MAE** (He et al., CVPR 2022) for plain-ViT encoders: ``vit``, ``deit``, ``segmenter`` (SETR and
  Segmenter's timm ViT/DeiT), ``dpt`` (smp's timm ViT encoder) and ``hybrid`` (TransUNet's ViT
  blocks). A plain ViT processes any subset of its tokens, so the encoder sees only the visible
  quarter of the patches (cheap) and a light transformer decoder, given mask tokens at the masked
  positions, predicts the pixels of every patch; the loss counts masked patches only. TransUNet's
  CNN stem needs the whole image: the masked 16-px squares are zeroed in its input (no masked
  content reaches the visible tokens through the CNN's receptive field) and its ViT blocks see only
  the visible tokens.
- **SimMIM** (Xie et al., CVPR 2022) for hierarchical encoders: ``swin`` (timm Swin in smp),
  ``segformer`` (smp's Mix Transformer) and ``mixer``. Shifted windows, overlapping convolutional
  patch embeddings and token-mixing MLPs need the full token grid, so masked tokens are replaced
  by a learned mask token right after the first patch embedding; the masked input pixels are also
  zeroed (MiT's overlapping 7x7 embedding would otherwise see 3 px into a masked square). A linear
  head (1x1 conv + pixel shuffle, SimMIM's) predicts the raw normalised pixels from the deepest
  features.
- **Masked-input SimMIM** for CNN encoders (``cnn``, any ``smp`` encoder): there are no tokens to
  replace, so the masked squares are zeroed in the input (the band mean after normalisation) and
  reconstructed from the deepest features with the same linear head. A cheap fallback that works
  for any encoder (the sparse-convolution pretraining of SparK would be the thorough way).

Nodata: windows come with a validity mask. Squares without any valid pixel are masked only when
there are not enough valid ones (they carry nothing to learn), per-patch target normalisation uses
valid pixels only, and nodata pixels never count in the loss.

The wrapper holds the model's encoder modules under the model's own attribute names (``encoder``,
or ``cnn`` + ``transformer``), so :meth:`MIMModel.encoder_state_dict` has exactly the keys of the
segmentation model's encoder tensors and loads into it by name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rs_vit.errors import CheckpointError, ConfigError, ModelError

#: ``extra.kind`` of an encoder checkpoint written by ``rs-vit pretrain``.
ENCODER_KIND = "encoder"
#: Families whose encoder is a plain ViT (MAE applies).
MAE_FAMILIES = ("vit", "deit", "segmenter", "dpt", "hybrid")
#: Families with a token embedding where SimMIM puts its mask token (module path, output layout).
_TOKEN_MODULES = {
    "segformer": ("encoder.patch_embed1", "nchw"),
    "swin": ("encoder.model.patch_embed", "nhwc"),
    "mixer": ("encoder.model.stem", "nlc"),
    "vit": ("encoder.model.patch_embed", "nhwc"),
    "deit": ("encoder.model.patch_embed", "nhwc"),
    "segmenter": ("encoder.model.patch_embed", "nhwc"),
    "dpt": ("encoder.model.patch_embed", "nhwc"),
}
_WHY = {
    "mae": "plain ViT: the encoder sees only the visible tokens, a light decoder predicts the masked pixels",
    "simmim-token": "a learned mask token replaces the masked tokens after the patch embedding (the encoder "
                    "needs the full token grid: windows, overlapping patch embeddings, token-mixing MLPs; input "
                    "pixels zeroed too); a linear head reconstructs from the deepest features",
    "simmim-input": "no tokens to mask: masked squares are zeroed in the input and reconstructed from the "
                    "deepest features with a linear head",
}


@dataclass(frozen=True)
class MIMPlan:
    """What masked image modelling does for one model (recorded in the checkpoints)."""

    family: str
    method: str  # "mae" or "simmim"
    masking: str  # "tokens-dropped", "mask-token" or "input"
    mask_patch: int
    mask_ratio: float
    loss: str  # "mse" or "l1"
    norm_pix_loss: bool
    why: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MIMOutput:
    """One forward pass: the loss, the reconstruction (normalised units, masked squares predicted,
    visible ones copied from the input) and the mask (``(B, H/mask_patch, W/mask_patch)`` bool)."""

    loss: torch.Tensor
    reconstruction: torch.Tensor
    mask: torch.Tensor


def encoder_parts(model: nn.Module, family: str) -> dict[str, nn.Module]:
    """The encoder submodules of an rs-vit model, by their attribute names in the model."""
    if family == "hybrid":
        return {"cnn": model.get_submodule("cnn"), "transformer": model.get_submodule("transformer")}
    enc = getattr(model, "encoder", None)
    if not isinstance(enc, nn.Module):
        raise ModelError(f"{type(model).__name__} has no 'encoder' module; it cannot be pretrained with MIM.")
    return {"encoder": enc}


def _token_patch(model: nn.Module, family: str) -> int:
    if family == "hybrid":
        return 16  # TransUNet's tokens are the CNN's stride-16 features
    vit = model.get_submodule("encoder.model")
    embed = getattr(vit, "patch_embed", None) or vit.stem  # MLP-Mixer: stem
    return int(embed.patch_size[0])


def make_plan(model: nn.Module, family: str, *, method: str = "auto", mask_ratio: float | None = None,
              mask_patch: int | None = None, loss: str = "auto", norm_pix_loss: bool | None = None) -> MIMPlan:
    """Choose the method and fill in the defaults for a model of ``family``.

    Raises:
        ConfigError: MAE asked for a non-ViT encoder, or a mask patch that does not fit the tokens.
    """
    if method == "auto":
        method = "mae" if family in MAE_FAMILIES else "simmim"
    if method not in ("mae", "simmim"):
        raise ConfigError(f"Unknown pretrain.method {method!r}; choose auto, mae or simmim.")
    if method == "mae":
        if family not in MAE_FAMILIES:
            raise ConfigError(
                f"pretrain.method mae needs a plain-ViT encoder (families {', '.join(MAE_FAMILIES)}); this "
                f"model's family is {family}: use method simmim (or auto)."
            )
        tp = _token_patch(model, family)
        if mask_patch not in (None, tp):
            raise ConfigError(f"pretrain.mask_patch {mask_patch}: MAE masks whole tokens, so it must be the "
                              f"encoder's patch size {tp} (or unset).")
        mp, masking = tp, "tokens-dropped"
        why = _WHY["mae"]
    else:
        masking = "mask-token" if family in _TOKEN_MODULES else "input"
        mp = mask_patch or 32
        if masking == "mask-token":
            tp = {"segformer": 4, "swin": 4}.get(family) or _token_patch(model, family)
            if mp % tp:
                raise ConfigError(f"pretrain.mask_patch {mp} must be a multiple of the encoder's token size "
                                  f"{tp} for SimMIM on a {family} model.")
        why = _WHY["simmim-token" if masking == "mask-token" else "simmim-input"]
    ratio = mask_ratio if mask_ratio is not None else (0.75 if method == "mae" else 0.6)
    loss = loss if loss != "auto" else ("mse" if method == "mae" else "l1")
    norm = norm_pix_loss if norm_pix_loss is not None else method == "mae"
    return MIMPlan(family, method, masking, int(mp), float(ratio), loss, bool(norm), why)


# -- masks and loss ---------------------------------------------------------------------------

def draw_mask(valid: torch.Tensor, patch: int, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A ``(B, H/patch, W/patch)`` bool mask with the same number of masked squares per window.

    Squares holding at least one valid pixel are masked first (in random order); squares of pure
    nodata only when there are not enough valid ones.
    """
    b, h, w = valid.shape
    gh, gw = h // patch, w // patch
    n = gh * gw
    k = min(max(int(round(ratio * n)), 1), max(n - 1, 1))
    has_data = F.avg_pool2d(valid[:, None].float(), patch).flatten(1) > 0
    noise = torch.rand(b, n, generator=generator, device="cpu" if generator is not None else valid.device)
    score = noise.to(valid.device) + has_data.float()
    idx = score.argsort(dim=1, descending=True)[:, :k]
    mask = torch.zeros(b, n, dtype=torch.bool, device=valid.device)
    mask.scatter_(1, idx, True)
    return mask.view(b, gh, gw)


def pixel_mask(mask: torch.Tensor, patch: int) -> torch.Tensor:
    """``(B, gh, gw)`` square mask → ``(B, 1, gh*patch, gw*patch)`` float pixel mask."""
    return mask[:, None].float().repeat_interleave(patch, 2).repeat_interleave(patch, 3)


def _patch_stats(x: torch.Tensor, w: torch.Tensor, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-square, per-band mean and std over the valid pixels, upsampled to pixels."""
    cnt = F.avg_pool2d(w, patch).clamp_min(1e-6)
    mean = F.avg_pool2d(x * w, patch) / cnt
    var = (F.avg_pool2d(x * x * w, patch) / cnt - mean * mean).clamp_min(0.0)
    up = lambda t: t.repeat_interleave(patch, 2).repeat_interleave(patch, 3)  # noqa: E731
    return up(mean), up((var + 1e-6).sqrt())


def reconstruction_loss(pred: torch.Tensor, x: torch.Tensor, pix: torch.Tensor, valid: torch.Tensor,
                        plan: MIMPlan) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss over masked valid pixels, and the prediction in the input's (normalised) units.

    Args:
        pred: ``(B, C, H, W)`` prediction (per-square normalised targets when ``norm_pix_loss``).
        x: the input, normalised.
        pix: ``(B, 1, H, W)`` masked pixels (1.0).
        valid: ``(B, H, W)`` bool, False on nodata.
    """
    pred = pred.float()
    w = valid[:, None].float()
    target = x.float()
    display = pred
    if plan.norm_pix_loss:
        mean, std = _patch_stats(target, w, plan.mask_patch)
        target = (target - mean) / std
        display = pred * std + mean
    m = (pix * w).expand_as(pred)
    err = (pred - target).pow(2) if plan.loss == "mse" else (pred - target).abs()
    denom = m.sum()
    loss = (err * m).sum() / denom.clamp_min(1.0)
    recon = torch.where(pix.expand_as(x) > 0, display.detach(), x.float())
    return loss, recon


# -- the wrappers -------------------------------------------------------------------------------

class MIMModel(nn.Module):
    """Base: holds the encoder parts under the model's names; subclasses implement ``predict``."""

    def __init__(self, parts: dict[str, nn.Module], in_channels: int, plan: MIMPlan) -> None:
        super().__init__()
        for name, module in parts.items():
            self.add_module(name, module)
        self.part_names = tuple(parts)
        self.in_channels = in_channels
        self.plan = plan

    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """The encoder's tensors under the segmentation model's key names."""
        return {k: v for k, v in self.state_dict().items() if k.split(".", 1)[0] in self.part_names}

    def encoder_module(self) -> nn.Module:
        """A module holding only the encoder parts (what an encoder checkpoint saves)."""
        holder = nn.Module()
        for name in self.part_names:
            holder.add_module(name, getattr(self, name))
        return holder

    def predict(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor, valid: torch.Tensor, mask: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> MIMOutput:
        """Mask ``x`` (``(B, C, H, W)`` normalised), reconstruct it, score the masked valid pixels."""
        p = self.plan.mask_patch
        if x.shape[-1] % p or x.shape[-2] % p:
            raise ConfigError(f"Window {tuple(x.shape[-2:])} is not a multiple of the mask patch {p}; "
                              "use a tile size that is.")
        if mask is None:
            mask = draw_mask(valid, p, self.plan.mask_ratio, generator)
        pred = self.predict(x, mask)
        loss, recon = reconstruction_loss(pred, x, pixel_mask(mask, p), valid, self.plan)
        return MIMOutput(loss, recon, mask)


class MAEDecoder(nn.Module):
    """MAE's light decoder: visible tokens + mask tokens, fixed 2-D sin-cos positions, a few
    transformer blocks, a linear layer to the ``patch² × bands`` pixels of each patch."""

    def __init__(self, enc_dim: int, out_dim: int, dim: int = 128, depth: int = 2) -> None:
        super().__init__()
        from timm.models.vision_transformer import Block

        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.blocks = nn.Sequential(*[Block(dim, max(1, dim // 32), mlp_ratio=4.0, qkv_bias=True)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.pred = nn.Linear(dim, out_dim)
        self.dim = dim

    def forward(self, visible: torch.Tensor, ids_keep: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        from timm.layers import build_sincos2d_pos_embed

        v = self.embed(visible)
        b, n = v.shape[0], grid[0] * grid[1]
        full = self.mask_token.to(v.dtype).expand(b, n, self.dim).clone()
        full = full.scatter(1, ids_keep[..., None].expand(-1, -1, self.dim), v)
        pos = build_sincos2d_pos_embed(list(grid), self.dim, device=v.device).to(v.dtype)
        return self.pred(self.norm(self.blocks(full + pos[None])))


class MAE(MIMModel):
    """MAE for a timm ViT (``encoder.model``) or TransUNet (``cnn`` + ``transformer``)."""

    def __init__(self, parts: dict[str, nn.Module], in_channels: int, plan: MIMPlan, *,
                 decoder_dim: int = 128, decoder_depth: int = 2) -> None:
        super().__init__(parts, in_channels, plan)
        self.hybrid = "transformer" in parts
        enc_dim = (self.transformer.norm.normalized_shape[0] if self.hybrid
                   else int(self.encoder.model.num_features))
        p = plan.mask_patch
        self.mim_decoder = MAEDecoder(enc_dim, p * p * in_channels, decoder_dim, decoder_depth)

    def _tokens(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode the visible tokens: ``(visible (B, n_keep, D), ids_keep (B, n_keep))``."""
        b = x.shape[0]
        keep = ~mask.flatten(1)
        n_keep = int(keep[0].sum())
        ids_keep = keep.nonzero()[:, 1].view(b, n_keep)
        if self.hybrid:
            from timm.layers import resample_abs_pos_embed

            tr = self.transformer
            xin = x * (1.0 - pixel_mask(mask, self.plan.mask_patch).to(x.dtype))
            t = tr.patch_embed.proj(self.cnn(xin)[-1])
            _, d, h, w = t.shape
            pos = tr.pos_embed
            if (h, w) != (tr.grid, tr.grid):
                pos = resample_abs_pos_embed(pos, [h, w], [tr.grid, tr.grid], num_prefix_tokens=0)
            t = t.flatten(2).transpose(1, 2) + pos
            vis = torch.gather(t, 1, ids_keep[..., None].expand(-1, -1, d))
            return tr.norm(tr.blocks(vis)), ids_keep
        vit = self.encoder.model
        t = vit.patch_embed(x)
        t = vit._pos_embed(t)  # timm: prefix tokens + (resampled) position embedding
        n_pre = int(vit.num_prefix_tokens)
        d = t.shape[-1]
        vis = torch.gather(t[:, n_pre:], 1, ids_keep[..., None].expand(-1, -1, d))
        t = vit.norm_pre(torch.cat([t[:, :n_pre], vis], dim=1))
        t = vit.norm(vit.blocks(t))
        return t[:, n_pre:], ids_keep

    def predict(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        p = self.plan.mask_patch
        gh, gw = hh // p, ww // p
        vis, ids_keep = self._tokens(x, mask)
        out = self.mim_decoder(vis, ids_keep, (gh, gw))  # (B, N, C*p*p)
        return out.view(b, gh, gw, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c, hh, ww)


def _deepest(out: Any) -> torch.Tensor:
    """The deepest feature map of an encoder's output (a tensor, a list, or smp-ViT's (list, list))."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], (list, tuple)):
        out = out[0]
    return out[-1]


class SimMIM(MIMModel):
    """SimMIM: masked input (and a mask token after the patch embedding where there is one), a
    1x1 conv + pixel shuffle on the deepest features predicting the normalised pixels."""

    def __init__(self, parts: dict[str, nn.Module], in_channels: int, plan: MIMPlan, *, tile: int,
                 token_module: tuple[str, str] | None = None) -> None:
        super().__init__(parts, in_channels, plan)
        self._active: torch.Tensor | None = None
        self._layout = None
        self.mask_token: nn.Parameter | None = None
        if token_module is not None:
            path, self._layout = token_module
            mod = self.get_submodule(path)
            dim = int(mod.proj.out_channels)
            self.mask_token = nn.Parameter(torch.zeros(dim))
            nn.init.trunc_normal_(self.mask_token, std=0.02)
            mod.register_forward_hook(self._hook)
        was = self.training
        self.eval()
        with torch.no_grad():
            feat = self._features(torch.zeros(1, in_channels, tile, tile))
        self.train(was)
        stride = tile // feat.shape[-1]
        if stride * feat.shape[-1] != tile:
            raise ModelError(f"Deepest features {tuple(feat.shape[-2:])} do not divide the tile {tile}.")
        self.stride = stride
        self.mim_decoder = nn.Sequential(nn.Conv2d(feat.shape[1], stride * stride * in_channels, 1),
                                         nn.PixelShuffle(stride))

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if "transformer" in self.part_names:
            return self.transformer(self.cnn(x)[-1])
        return _deepest(self.encoder(x))

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> Any:
        m = self._active
        if m is None or self.mask_token is None:
            return output
        tok = self.mask_token.to(output.dtype)
        if self._layout == "nchw":
            mm = F.interpolate(m, size=output.shape[-2:], mode="nearest").to(output.dtype)
            return output * (1 - mm) + tok.view(1, -1, 1, 1) * mm
        if self._layout == "nhwc":
            mm = F.interpolate(m, size=output.shape[1:3], mode="nearest").to(output.dtype).permute(0, 2, 3, 1)
            return output * (1 - mm) + tok * mm
        # nlc: (B, h*w, C) on the input's patch grid
        b, n, _ = output.shape
        ph = int(module.patch_size[0])
        gh, gw = m.shape[-2] // ph, m.shape[-1] // ph
        mm = F.interpolate(m, size=(gh, gw), mode="nearest").to(output.dtype).view(b, n, 1)
        return output * (1 - mm) + tok * mm

    def predict(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pix = pixel_mask(mask, self.plan.mask_patch).to(x.dtype)
        self._active = pix
        try:
            feat = self._features(x * (1 - pix))
        finally:
            self._active = None
        return self.mim_decoder(feat)


def build_mim(model: nn.Module, family: str, in_channels: int, tile: int, *, method: str = "auto",
              mask_ratio: float | None = None, mask_patch: int | None = None, loss: str = "auto",
              norm_pix_loss: bool | None = None, decoder_dim: int = 128, decoder_depth: int = 2) -> MIMModel:
    """Wrap the encoder of an rs-vit segmentation model for masked image modelling.

    Args:
        model: a model from :func:`rs_vit.models.registry.create_model`.
        family: its registry family (chooses the method; see the module docstring).
        in_channels: number of input bands.
        tile: the window size it will be trained on (a multiple of the mask patch).
        method, mask_ratio, mask_patch, loss, norm_pix_loss: see :class:`rs_vit.config.PretrainConfig`.
        decoder_dim, decoder_depth: the MAE decoder's size.
    """
    plan = make_plan(model, family, method=method, mask_ratio=mask_ratio, mask_patch=mask_patch, loss=loss,
                     norm_pix_loss=norm_pix_loss)
    if tile % plan.mask_patch:
        raise ConfigError(f"train.tile_size {tile} must be a multiple of the mask patch {plan.mask_patch} "
                          "(pretrain.mask_patch).")
    parts = encoder_parts(model, family)
    if plan.method == "mae":
        return MAE(parts, in_channels, plan, decoder_dim=decoder_dim, decoder_depth=decoder_depth)
    token = _TOKEN_MODULES.get(family) if plan.masking == "mask-token" else None
    return SimMIM(parts, in_channels, plan, tile=tile, token_module=token)


# -- encoder checkpoints ------------------------------------------------------------------------

def is_encoder_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is an encoder checkpoint written by ``rs-vit pretrain``."""
    from rs_vit.models.checkpoint import read_spec

    try:
        return read_spec(path).extra.get("kind") == ENCODER_KIND
    except CheckpointError:
        return False


def encoder_stats(path: str | Path, bands: list[str], mean: np.ndarray, std: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, str]:
    """The normalisation a run starting from a pretrained encoder uses: the encoder's own statistics
    for the bands it was pretrained on (matched by name), the run's data statistics for the others.

    Returns ``(mean, std, note)``; unchanged when ``path`` is not an encoder checkpoint.
    """
    from rs_vit.models.checkpoint import read_spec

    p = Path(path)
    if not is_encoder_checkpoint(p):
        return mean, std, ""
    from rs_vit.io.bands import normalize_name

    spec = read_spec(p)
    src = {normalize_name(b): i for i, b in enumerate(spec.bands)}
    mean, std = np.array(mean, dtype=np.float64), np.array(std, dtype=np.float64)
    used = []
    for i, b in enumerate(bands):
        j = src.get(normalize_name(b))
        if j is not None:
            mean[i], std[i] = spec.mean[j], spec.std[j]
            used.append(b)
    note = f"normalisation of the pretrained encoder for {len(used)}/{len(bands)} bands"
    return mean, std, note


def load_encoder(model: nn.Module, path: str | Path, bands: list[str], band_init: str = "mean") -> str:
    """Load an encoder checkpoint written by :func:`pretrain` into a segmentation model, bands matched
    by name (:func:`rs_vit.models.adapt.load_adapted`).

    Returns:
        A note for the log: ``"N/N encoder tensors loaded …"``.

    Raises:
        CheckpointError: when not every encoder tensor fits the model (another architecture).
    """
    from safetensors.torch import load_file

    from rs_vit.models.adapt import load_adapted
    from rs_vit.models.checkpoint import WEIGHTS_FILE, read_spec

    p = Path(path)
    spec = read_spec(p)
    state = load_file(str(p / WEIGHTS_FILE))
    report = load_adapted(model, state, in_channels=len(bands), src_bands=spec.bands, dst_bands=bands,
                          band_init=band_init, source=str(p), min_fraction=0.0)
    n_ok = len(report.loaded) + len(report.adapted) + len(report.resampled)
    if n_ok != len(state):
        raise CheckpointError(
            f"--init-from {p}: only {n_ok} of {len(state)} encoder tensors of the pretrained {spec.name} fit "
            f"this model (e.g. {report.skipped[0] if report.skipped else '-'}); pretrain the model you train "
            "(or one with the same encoder)."
        )
    how = "; ".join(f"{k} adapted ({', '.join(f'{b}<-{s}' for b, s in m.items())})"
                    for k, m in report.adapted.items())
    return (f"{n_ok}/{len(state)} encoder tensors loaded from the pretrained {spec.name} "
            f"({spec.extra.get('method', '?')}, epoch {spec.extra.get('epoch', '?')})" + (f"; {how}" if how else ""))


__all__: list[str] = ["MAE", "MAE_FAMILIES", "MIMModel", "MIMOutput", "MIMPlan", "SimMIM", "build_mim",
                      "draw_mask", "encoder_parts", "encoder_stats", "is_encoder_checkpoint", "load_encoder",
                      "make_plan", "reconstruction_loss", "ENCODER_KIND"]
