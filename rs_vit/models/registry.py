"""A registry of small entry functions (timm style) funnelled into one factory.

Each entry builds an ``nn.Module`` mapping ``(B, in_channels, H, W)`` to class logits
``(B, num_classes, H, W)``, and records what the rest of the tool must know about it: family,
the multiple its tile size must be, a fixed tile size if it has one, pretrained sources.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from rs_vit.errors import ModelError, suggest


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model name.

    ``pretrained`` lists the weights tags it can start from (``imagenet``: each of
    ``extra["sources"]``, ``(timm | smp, name)``, is downloaded through timm / smp and loaded
    by band name; tests/test_pretrained_imagenet.py checks every family offline).
    """

    name: str
    family: str
    builder: Callable[..., nn.Module]
    tile_multiple: int = 32
    fixed_tile: int | None = None
    default_tile: int = 256
    pretrained: tuple[str, ...] = ()
    is_transformer: bool = True
    description: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def valid_tile(self, tile: int) -> bool:
        """Whether the model accepts square tiles of this size."""
        if self.fixed_tile is not None:
            return tile == self.fixed_tile
        return tile > 0 and tile % self.tile_multiple == 0

    def nearest_tiles(self, tile: int) -> list[int]:
        """The valid sizes nearest to ``tile`` (one below, one above)."""
        if self.fixed_tile is not None:
            return [self.fixed_tile]
        m = self.tile_multiple
        below = (tile // m) * m
        return [s for s in (below, below + m) if s > 0]


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str | None = None,
    *,
    family: str,
    tile_multiple: int = 32,
    fixed_tile: int | None = None,
    default_tile: int = 256,
    pretrained: Sequence[str] = (),
    is_transformer: bool = True,
    source: str = "",
    **extra: Any,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a builder ``fn(in_channels, num_classes, **kwargs) -> nn.Module``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is registered twice")
        _REGISTRY[key] = ModelEntry(
            name=key,
            family=family,
            builder=fn,
            tile_multiple=tile_multiple,
            fixed_tile=fixed_tile,
            default_tile=fixed_tile or default_tile,
            pretrained=tuple(pretrained),
            is_transformer=is_transformer,
            description=(fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "",
            source=source,
            extra=dict(extra),
        )
        return fn

    return wrap


def _ensure_zoo() -> None:
    import rs_vit.models.zoo  # noqa: F401  (registers the entries)


def list_models(pattern: str = "*", family: str | None = None) -> list[str]:
    """Registered model names matching a glob ``pattern`` (and ``family``), sorted."""
    _ensure_zoo()
    return sorted(
        n for n, e in _REGISTRY.items()
        if fnmatch.fnmatch(n, pattern) and (family is None or e.family == family)
    )


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; unknown names list the valid choices."""
    _ensure_zoo()
    if name not in _REGISTRY:
        raise ModelError(
            f"Unknown model {name!r}.{suggest(name, _REGISTRY)} "
            f"Available: {', '.join(sorted(_REGISTRY))} (see `rs-vit models`)."
        )
    return _REGISTRY[name]


def check_tile_size(name: str, tile: int) -> None:
    """Raise :class:`ModelError` naming the nearest valid sizes when ``tile`` is not valid."""
    entry = get_entry(name)
    if not entry.valid_tile(tile):
        if entry.fixed_tile is not None:
            raise ModelError(
                f"Model {name} only accepts {entry.fixed_tile}x{entry.fixed_tile} tiles (its "
                f"token-mixing layers fix the token count); got {tile}. Use --tile-size {entry.fixed_tile}."
            )
        near = " or ".join(str(s) for s in entry.nearest_tiles(tile))
        raise ModelError(
            f"Tile size {tile} is not valid for model {name}: it must be a multiple of "
            f"{entry.tile_multiple}; the nearest valid sizes are {near}."
        )


def find_entry(name: str) -> ModelEntry | None:
    """The registered entry of ``name``, or None for a model outside the registry (e.g. imported
    foreign weights)."""
    _ensure_zoo()
    return _REGISTRY.get(name)


def check_tile(model_name: str, tile: int, *, tile_multiple: int | None = None,
               fixed_tile: int | None = None) -> None:
    """Validate a tile size against a model.

    Registered models are checked by the registry (multiple of the stride or patch size, or the
    one fixed size). Models outside the registry (e.g. imported foreign weights) are checked
    against ``tile_multiple`` / ``fixed_tile`` when given.

    Raises:
        ModelError: naming the nearest valid sizes.
    """
    if find_entry(model_name) is not None:
        check_tile_size(model_name, tile)
        return
    if fixed_tile is not None and tile != fixed_tile:
        raise ModelError(f"Model {model_name} only accepts {fixed_tile}x{fixed_tile} tiles; got {tile}. "
                         f"Use --tile-size {fixed_tile}.")
    if tile < 1:
        raise ModelError(f"Tile size must be positive, got {tile}.")
    if tile_multiple and tile % tile_multiple:
        below = (tile // tile_multiple) * tile_multiple
        near = " or ".join(str(s) for s in (below, below + tile_multiple) if s > 0)
        raise ModelError(f"Tile size {tile} is not valid for model {model_name}: it must be a multiple "
                         f"of {tile_multiple}; the nearest valid sizes are {near}.")


def create_model(
    name: str,
    *,
    in_channels: int,
    num_classes: int,
    pretrained: str | None = None,
    weights: str | None = None,
    band_names: Sequence[str] | None = None,
    band_init: str = "mean",
    drop_path_rate: float = 0.0,
    weights_bands: Sequence[str] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered segmentation model for ``in_channels`` bands and ``num_classes``.

    Args:
        name: registered name (see :func:`list_models`).
        in_channels: number of input bands.
        num_classes: number of output classes.
        pretrained: ``"imagenet"`` (or a timm tag) to start from pretrained RGB weights, adapted
            to ``band_names`` by name; None trains from scratch.
        weights: a local weights file to start from instead of downloading.
        band_names: canonical band names of the input, used to place pretrained RGB kernels.
        band_init: how bands without a pretrained counterpart start (mean, zero, random, cycle).
        drop_path_rate: stochastic depth for transformer encoders.
        weights_bands: band names of the ``weights`` file's input layer, when it is not an
            rs-vit checkpoint (default: red, green, blue for a 3-channel first layer).
        **kwargs: passed to the model's builder.

    Raises:
        ModelError: unknown name, option or band_init; pretrained weights that cannot be had.
    """
    from rs_vit.models.adapt import check_band_init

    entry = get_entry(name)
    if in_channels < 1 or num_classes < 1:
        raise ModelError(f"in_channels and num_classes must be >= 1 (got {in_channels}, {num_classes}).")
    check_band_init(band_init)
    if pretrained and not weights and not entry.pretrained:
        raise ModelError(f"Model {name} has no pretrained weights; set pretrained to null "
                         "(or give a local file with weights: PATH).")
    if weights_bands:
        kwargs["weights_bands"] = list(weights_bands)
    distill_head = bool(kwargs.pop("distill_head", False))  # DeiT's token head: rs_vit.train.distill
    try:
        model = entry.builder(
            in_channels=in_channels,
            num_classes=num_classes,
            pretrained=pretrained,
            weights=weights,
            band_names=list(band_names) if band_names else None,
            band_init=band_init,
            drop_path_rate=drop_path_rate,
            **kwargs,
        )
    except TypeError as exc:
        raise ModelError(f"Model {name}: invalid option ({exc}).") from None
    if distill_head:
        from rs_vit.train.distill import attach_distill_head

        attach_distill_head(model, num_classes)
    return model
