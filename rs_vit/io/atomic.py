"""Atomic outputs: write to a temporary name in the target folder, rename when complete.

Every output of rs-vit goes through :func:`atomic_path`: the data are written to a hidden
``.<name>.<random>.part<suffix>`` file beside the final path and renamed (``os.replace``, atomic
on POSIX and Windows within one file system) only when the writer finished without error. A
failure, Ctrl-C or ``SIGTERM`` removes the temporary file; a ``SIGKILL`` or power loss can leave
it behind, but never a partial file under the final name.

GDAL does not raise on every failed write (a full disk during a GeoTIFF's final flush is only
*logged* by GDAL and the file is closed as if complete), so :func:`atomic_path` checks that every
block of a finished GeoTIFF reached the disk before it commits the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from rs_vit.errors import OutputError

#: GDAL/libtiff messages that mean data did not reach the disk.
_WRITE_FAILURE = re.compile(
    r"write error|write failed|seek error|no space|disk full|free disk space|short write|failed to write|"
    r"cannot write|can't write|error writing|read-only file system",
    re.IGNORECASE,
)


def check_output(path: str | Path, *, overwrite: bool = False, label: str = "output") -> Path:
    """Validate an output path before any work is done.

    Raises:
        OutputError: when the file exists (and ``overwrite`` is False), its folder is missing,
            is not a folder, or is not writable (permissions or a read-only file system).
    """
    p = Path(path)
    if p.exists() and p.is_dir():
        raise OutputError(f"{label} {p} is a folder; give a file name.")
    if p.exists() and not overwrite:
        raise OutputError(f"{label} {p} already exists; pass --overwrite to replace it.")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"Folder {parent} of {label} {p} does not exist; create it first.")
    if not parent.is_dir():
        raise OutputError(f"{parent} (the folder of {label} {p}) is a file, not a folder; choose another path.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"Folder {parent} of {label} {p} is not writable; choose another folder.")
    return p


def _verify_tiff(path: Path) -> str | None:
    """Why a freshly written GeoTIFF is incomplete, or None when every block reached the disk.

    GDAL does not always raise when a write fails (a full disk during the final flush is only
    logged, and the file is closed as if complete); a block that never reached the disk has no
    offset (GDAL then reads it as empty) or points past the end of the file.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    size = path.stat().st_size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
        with src:
            if src.driver not in ("GTiff", "COG"):
                return None
            for b in range(1, src.count + 1):
                for (i, j), _ in src.block_windows(b):
                    off = src.get_tag_item(f"BLOCK_OFFSET_{j}_{i}", "TIFF", bidx=b)
                    n = src.get_tag_item(f"BLOCK_SIZE_{j}_{i}", "TIFF", bidx=b)
                    if not off or not n or int(off) <= 0 or int(off) + int(n) > size:
                        return f"block {i},{j} of band {b} is missing"
                if getattr(getattr(src, "interleaving", None), "name", "") == "PIXEL":
                    break  # pixel-interleaved: every band shares the blocks of band 1
    except (RasterioError, OSError, ValueError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def _disk_full(folder: Path, margin: int = 16 * 1024 * 1024) -> bool:
    """Whether the file system holding ``folder`` has (almost) no space left."""
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def _write_failed(final: Path, detail: str) -> OutputError:
    folder = final.parent if str(final.parent) else Path(".")
    if _disk_full(folder) or re.search(r"no space|disk full|free disk space", detail, re.IGNORECASE):
        return OutputError(
            f"Disk full while writing {final} ({detail}); free space or choose another folder, "
            "then retry. Nothing was written under that name."
        )
    return OutputError(
        f"Writing {final} failed ({detail}); check the disk and the folder, then retry. "
        "Nothing was written under that name."
    )


def os_error_message(exc: OSError, what: str | Path | None = None) -> str | None:
    """A one-line message with the fix for a well-known OS error, or None for other errors."""
    target = what or exc.filename or "a file"
    code = exc.errno
    if code is None and "No space left on device" in str(exc):
        code = errno.ENOSPC
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"Disk full while writing {target}; free space or choose another folder, then retry."
    if code == errno.EROFS:
        return f"{target} is on a read-only file system; choose another output folder."
    if code in (errno.EACCES, errno.EPERM):
        return f"Permission denied for {target}; choose a folder you can write to or fix its permissions."
    if code == errno.ENOENT:
        return f"{target}: no such file or folder; check the path (and create missing folders)."
    if code == errno.ENOTDIR:
        return f"{target}: a part of this path is a file, not a folder; check the path."
    if code == errno.EISDIR:
        return f"{target} is a folder; give a file name."
    if code == errno.ENAMETOOLONG:
        return f"{target}: the name is too long for the file system; choose a shorter path."
    return None


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is removed and nothing
    appears under the final name. A GeoTIFF (``.tif``) whose blocks did not all reach the disk
    (a write failure that GDAL only logged, e.g. a full disk) is refused before the rename.

    Raises:
        OutputError: the final file exists and ``overwrite`` is False; the folder cannot be
            written to; the disk is full; GDAL reported a write failure.
    """
    final = Path(path)
    if final.exists() and not overwrite:
        raise OutputError(f"{final} already exists; pass --overwrite to replace it.")
    folder = final.parent if str(final.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part" + final.suffix, dir=folder)
    except OSError as exc:
        raise OutputError(os_error_message(exc, final) or f"Cannot create {final} ({exc}).") from None
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the random name is reserved enough; some writers refuse existing files
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"Writing {final} produced no file; nothing was written under that name.")
        if tmp.suffix.lower() in (".tif", ".tiff") and tmp.is_file():
            problem = _verify_tiff(tmp)
            if problem is not None:
                raise _write_failed(final, problem)
        os.replace(tmp, final)
    except OSError as exc:
        _cleanup(tmp)
        msg = os_error_message(exc, final)
        if msg is not None and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, None):
            raise OutputError(msg) from None
        detail = _chain_text(exc)
        if exc.errno is None and _WRITE_FAILURE.search(detail):
            raise _write_failed(final, detail.splitlines()[0]) from None
        raise
    except OutputError:
        _cleanup(tmp)
        raise
    except Exception as exc:
        _cleanup(tmp)
        detail = _chain_text(exc)
        if _is_gdal_error(exc) and _WRITE_FAILURE.search(detail):
            raise _write_failed(final, detail.splitlines()[0]) from None
        raise
    except BaseException:
        _cleanup(tmp)
        raise


def _is_gdal_error(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by GDAL through rasterio (or by pyogrio)."""
    mod = type(exc).__module__ or ""
    return mod.startswith(("rasterio", "pyogrio", "fiona"))


def atomic_write_bytes(path: str | Path, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    final = Path(path)
    with atomic_path(final, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return final


def atomic_write_text(path: str | Path, text: str, *, overwrite: bool = True, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (temporary file, fsync, rename)."""
    return atomic_write_bytes(path, text.encode(encoding), overwrite=overwrite)


def _chain_text(exc: BaseException) -> str:
    """The messages of an exception and of its causes, one per line."""
    parts, seen = [], set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts.append(str(cur))
        cur = cur.__cause__ or cur.__context__
    return "\n".join(p for p in parts if p)


def _cleanup(tmp: Path) -> None:
    for p in (tmp, tmp.with_name(tmp.name + ".aux.xml"), tmp.with_name(tmp.name + ".ovr")):
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink()
