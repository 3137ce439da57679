"""Reading weights files without running code: safetensors, or ``torch.load(weights_only=True)``.

One home for the safe loader and its one-line failure messages, shared by local ``weights:`` files
(:mod:`rs_vit.models.pretrained`), catalogue downloads (:mod:`rs_vit.models.catalogue`) and the
training state of a resumed run.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch

from rs_vit.errors import ModelError, RsVitError

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


def read_tensor_file(path: str | Path, *, error: type[RsVitError] = ModelError) -> object:
    """The object stored in a weights file (a state dict or a container of one), read safely.

    ``.safetensors`` is read with safetensors, anything else with :func:`torch_load_safely`.

    Raises:
        error: the file is missing, empty, truncated, not a weights file, or holds pickled code.
    """
    p = Path(path)
    if not p.is_file():
        raise error(f"Weights file {p} does not exist; give a .safetensors/.pth/.bin file.")
    if p.stat().st_size == 0:
        raise error(f"{p}: is empty (0 bytes), not a weights file; re-download or re-export it.")
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(p))
        except (SafetensorError, OSError, ValueError) as exc:
            raise error(f"{p}: cannot be read as safetensors ({exc}).") from None
    return torch_load_safely(p, error=error)


def torch_load_safely(path: str | Path, *, error: type[RsVitError] = ModelError) -> object:
    """``torch.load(path, weights_only=True)`` (no pickled code runs), failing in one line.

    Raises:
        error: the file is empty, not a torch file, truncated, or holds pickled code (refused).
    """
    p = Path(path)
    if p.stat().st_size == 0:
        raise error(f"{p}: is empty (0 bytes), not a weights file; re-download or re-export it.")
    try:
        with warnings.catch_warnings():  # torch's own warnings would precede the one-line message
            warnings.simplefilter("ignore")
            return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad/unsafe files
        raise _torch_load_failure(p, exc, error) from None


def _torch_load_failure(p: Path, exc: BaseException, error: type[RsVitError] = ModelError) -> RsVitError:
    """Why ``torch.load(p, weights_only=True)`` failed, in the user's terms.

    torch's own messages mislead here: a refused pickle advises ``weights_only=False`` (which would
    run the file's code), an empty or text file gives a bare ``EOFError()`` or ``KeyError(101)``.
    """
    text = str(exc)
    blocked = re.search(r"unsupported GLOBAL (\S+)", text) or re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if "Weights only load failed" in text or blocked:
        what = f" ({blocked.group(1)})" if blocked else ""
        return error(
            f"{p}: refused, it cannot be loaded safely: the file contains pickled code{what}, which rs-vit "
            "never runs. If you trust its source, re-save its state dict as .safetensors "
            "(safetensors.torch.save_file) and pass that."
        )
    with open(p, "rb") as fh:
        head = fh.read(8)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # torch zip / protocol-2+ pickle
        return error(
            f"{p}: is not a weights file (it starts with {head!r}, not a PyTorch archive or pickle); "
            "give a .safetensors file or a state dict saved with torch.save."
        )
    detail = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return error(
        f"{p}: is truncated, corrupt or not a weights file ({type(exc).__name__}: {detail}); "
        "re-download it, or give a .safetensors file or a state dict saved with torch.save."
    )
