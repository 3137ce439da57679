"""Segmentation models: the registry, the zoo's entries, band adaptation and checkpoints."""

from rs_vit.models.registry import create_model, get_entry, list_models, register_model

__all__ = ["create_model", "get_entry", "list_models", "register_model"]
