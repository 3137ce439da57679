"""The building blocks: atomic writes (including GDAL's silent write failures), output checks,
the CLI's translation of failures into one line, and SIGTERM clean-up."""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from _helpers_reliability import CRS, TRANSFORM, assert_clean_error, cli, make_scene
from rs_vit.errors import OutputError, Terminated
from rs_vit.io.atomic import atomic_path, atomic_write_text, check_output


def test_failed_block_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_interrupt_leaves_previous_file(tmp_path: Path) -> None:
    final = tmp_path / "out.txt"
    final.write_text("previous")
    with pytest.raises(KeyboardInterrupt), atomic_path(final) as tmp:
        tmp.write_text("new, half")
        raise KeyboardInterrupt
    assert final.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_text(tmp_path: Path) -> None:
    final = atomic_write_text(tmp_path / "a.json", "{}")
    assert final.read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["a.json"]
    with pytest.raises(OutputError, match="--overwrite"):
        atomic_write_text(final, "x", overwrite=False)


def _profile(**kw: object) -> dict:
    return dict(driver="GTiff", width=64, height=64, count=1, dtype="uint8", crs=CRS, transform=TRANSFORM,
                tiled=True, blockxsize=16, blockysize=16, **kw)


def test_geotiff_with_missing_blocks_is_not_committed(tmp_path: Path) -> None:
    """What a full disk does to GDAL: blocks silently missing, file closed 'successfully'.
    (A sparse file reproduces it without filling a disk.)"""
    final = tmp_path / "mask.tif"
    with pytest.raises(OutputError, match="mask.tif"), atomic_path(final) as tmp:
        with rasterio.open(tmp, "w", **_profile(SPARSE_OK=True)) as dst:
            dst.write(np.ones((1, 16, 64), np.uint8), window=Window(0, 0, 64, 16))  # 1 of 4 block rows
    assert list(tmp_path.iterdir()) == []


def test_complete_geotiff_is_committed(tmp_path: Path) -> None:
    final = tmp_path / "mask.tif"
    with atomic_path(final) as tmp, rasterio.open(tmp, "w", **_profile(compress="deflate")) as dst:
        dst.write(np.zeros((1, 64, 64), np.uint8))  # all-zero blocks compress to almost nothing
    with rasterio.open(final) as src:
        assert src.read(1).sum() == 0
    assert [p.name for p in tmp_path.iterdir()] == ["mask.tif"]


def test_enospc_inside_block_is_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="Disk full while writing .*out.bin"), atomic_path(tmp_path / "out.bin"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_check_output_refusals(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output(tmp_path / "file" / "mask.tif")
    with pytest.raises(OutputError, match="is a folder"):
        check_output(tmp_path)
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "a" / "b.tif")
    assert check_output(tmp_path / "new.tif") == tmp_path / "new.tif"


@pytest.mark.parametrize("exc,must", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/x.tif"), "Disk full while writing /data/x.tif"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/x.tif"), "read-only file system"),
    (PermissionError(errno.EACCES, "Permission denied", "/root/x.tif"), "Permission denied for /root/x.tif"),
    (FileNotFoundError(errno.ENOENT, "No such file", "/nope/x"), "/nope/x: no such file"),
    (MemoryError(), "Out of memory"),
])
def test_describe_failure(exc: BaseException, must: str) -> None:
    from rs_vit.cli.app import describe_failure

    found = describe_failure(exc)
    assert found is not None and must in found[0] and found[1] == 2


def test_bugs_are_not_described() -> None:
    from rs_vit.cli.app import describe_failure

    assert describe_failure(KeyError("x")) is None
    assert describe_failure(OSError(errno.EBADF, "Bad file descriptor")) is None


def test_sigterm_raises_terminated() -> None:
    from rs_vit.cli import install_signal_handlers

    old = signal.getsignal(signal.SIGTERM)
    try:
        install_signal_handlers()
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(200):  # the handler runs between two bytecodes of the main thread
                time.sleep(0.01)
    finally:
        signal.signal(signal.SIGTERM, old)


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    res = cli("predict", "x.tif", "--batch-size", "many")
    assert_clean_error(res, "--batch-size", "rs-vit predict --help")
    res = cli("predcit")
    assert_clean_error(res, "Did you mean 'predict'")


@pytest.mark.parametrize("command", ["stats", "evaluate"])
def test_other_commands_refuse_corrupt_rasters_in_one_line(tmp_path: Path, command: str) -> None:
    bad = tmp_path / "bad.tif"
    bad.write_bytes(make_scene(tmp_path / "good.tif").read_bytes()[:200])
    args = [bad] if command == "stats" else [bad, tmp_path / "good.tif", "--num-classes", "3"]
    res = cli(command, *args)
    assert_clean_error(res, "bad.tif")


@pytest.mark.parametrize("device", ["meta", "xla", "cuda:abc", "gpu"])
def test_unusable_devices_are_config_errors(device: str) -> None:
    from rs_vit.device import resolve_device
    from rs_vit.errors import ConfigError

    with pytest.raises(ConfigError, match=device.split(":")[0]):
        resolve_device(device)
