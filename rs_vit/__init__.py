"""rs-vit: vision transformers for semantic segmentation of multispectral remote-sensing imagery.

The public API is small; everything else lives in subpackages::

    from rs_vit import train, predict_scene, load_model, evaluate_mask, create_model, list_models
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "create_model",
    "list_models",
    "load_model",
    "predict_scene",
    "train",
    "evaluate_mask",
]


def __getattr__(name: str):  # lazy: `import rs_vit` stays cheap (no torch import)
    if name in ("create_model", "list_models"):
        from rs_vit.models import registry

        return getattr(registry, name)
    if name == "load_model":
        from rs_vit.models.checkpoint import load_model

        return load_model
    if name == "predict_scene":
        from rs_vit.infer.engine import predict_scene

        return predict_scene
    if name == "train":
        from rs_vit.train.loop import train

        return train
    if name == "evaluate_mask":
        from rs_vit.evaluate.evaluator import evaluate_mask

        return evaluate_mask
    raise AttributeError(f"module 'rs_vit' has no attribute {name!r}")
