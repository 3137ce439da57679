"""Every path that reads a weights file refuses bad files in one line, without running code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from rs_vit.errors import ModelError
from rs_vit.models import catalogue, pretrained


class _Evil:
    def __reduce__(self):  # noqa: ANN204 - pickles a call to os.getcwd (harmless, but code)
        return (os.getcwd, ())


@pytest.mark.parametrize("reader", [pretrained.read_weights, catalogue.read_file], ids=["weights", "catalogue"])
def test_bad_weights_files_fail_in_one_line(reader, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="empty") as info:
        reader(empty)
    assert "\n" not in str(info.value)

    evil = tmp_path / "evil.pth"
    torch.save({"w": _Evil()}, evil)
    with pytest.raises(ModelError, match="pickled code") as info:
        reader(evil)
    assert "weights_only=False" not in str(info.value)

    text = tmp_path / "notes.pth"
    text.write_text("hello, not weights")
    with pytest.raises(ModelError, match="not a weights file"):
        reader(text)

    good = tmp_path / "good.pth"
    torch.save({"w": torch.ones(2)}, good)
    assert torch.equal(reader(good)["w"], torch.ones(2))
