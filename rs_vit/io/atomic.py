"""Atomic outputs: write to a temporary name in the target folder, rename when complete."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rs_vit.errors import OutputError


def check_output(path: str | Path, *, overwrite: bool = False, label: str = "output") -> Path:
    """Validate an output path before any work is done.

    Raises:
        OutputError: when the file exists (and ``overwrite`` is False), its folder is missing,
            or the folder is not writable.
    """
    p = Path(path)
    if p.exists() and p.is_dir():
        raise OutputError(f"{label} {p} is a folder; give a file name.")
    if p.exists() and not overwrite:
        raise OutputError(f"{label} {p} already exists; pass --overwrite to replace it.")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"Folder {parent} of {label} {p} does not exist; create it first.")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"Folder {parent} of {label} {p} is not writable; choose another folder.")
    return p


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is removed and nothing
    appears under the final name.
    """
    final = Path(path)
    if final.exists() and not overwrite:
        raise OutputError(f"{final} already exists; pass --overwrite to replace it.")
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=".part" + final.suffix, dir=final.parent or "."
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the random name is reserved enough; some writers refuse existing files
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as exc:
        _cleanup(tmp)
        if exc.errno == errno.ENOSPC:
            raise OutputError(f"Disk full while writing {final}; free space and retry.") from None
        raise
    except BaseException:
        _cleanup(tmp)
        raise


def _cleanup(tmp: Path) -> None:
    for p in (tmp, tmp.with_name(tmp.name + ".aux.xml"), tmp.with_name(tmp.name + ".ovr")):
        with contextlib.suppress(OSError):
            p.unlink()
