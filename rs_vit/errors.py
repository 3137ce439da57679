"""The project's exceptions.

Every message says what was wrong (naming the file, option or value) and how to fix it. The CLI
prints ``RsVitError`` messages as one line (no traceback unless ``--debug``) and exits non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RsVitError(Exception):
    """Base class: an error caused by the user's input, with a message that says how to fix it."""


class InputError(RsVitError):
    """A scene, label file or other input cannot be used as given."""


class BandMismatchError(InputError):
    """A scene's bands do not provide what a model needs."""


class ConfigError(RsVitError):
    """A configuration value is unknown, of the wrong type or impossible."""


class CheckpointError(RsVitError):
    """A checkpoint is missing, corrupt, unsafe or incompatible."""


class ModelError(RsVitError):
    """A model name, size or option is not valid."""


class OutputError(RsVitError):
    """An output cannot be written (exists, folder missing, read-only, disk full)."""


class Terminated(KeyboardInterrupt):
    """Raised in the main thread of the ``rs-vit`` command when it receives ``SIGTERM``, so that
    the same clean-up as for Ctrl-C runs (temporary outputs removed, nothing partial committed)."""


def suggest(value: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def error_detail(exc: BaseException) -> str:
    """The informative first lines of ``exc`` and its causes, root cause first, on one line.

    rasterio raises a generic "Read failed. See previous exception for details." whose cause
    (GDAL's own error) names the file, band and block; quoted alone it points at nothing.
    """
    parts: list[str] = []
    cur: BaseException | None = exc
    seen: set[int] = set()
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        text = str(cur).strip()
        first = text.splitlines()[0] if text else ""
        if first and "previous exception" not in first and first not in parts:
            parts.append(first)
        cur = cur.__cause__ or cur.__context__
    return "; ".join(reversed(parts)) or type(exc).__name__
