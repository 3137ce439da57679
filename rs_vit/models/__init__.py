"""Segmentation models: the registry, the zoo's entries, band adaptation, weights and checkpoints."""

from rs_vit.models.adapt import BAND_INIT, adapt_conv_weight, find_input_convs, load_adapted
from rs_vit.models.registry import check_tile_size, create_model, get_entry, list_models, register_model

__all__ = [
    "BAND_INIT",
    "adapt_conv_weight",
    "check_tile_size",
    "create_model",
    "find_input_convs",
    "get_entry",
    "list_models",
    "load_adapted",
    "register_model",
]
