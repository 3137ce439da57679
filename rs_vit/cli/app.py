"""The Typer app: global options and the command modules, one module per command."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import click
import typer

from rs_vit import __version__

app = typer.Typer(
    name="rs-vit",
    help="Vision transformers for semantic segmentation of multispectral satellite and aerial imagery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

STATE = {"debug": False}

F = TypeVar("F", bound=Callable[..., Any])


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rs-vit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for errors.")] = False,
) -> None:
    STATE["debug"] = debug


def describe_failure(exc: BaseException) -> tuple[str, int] | None:
    """A one-line message and exit code for a failure the user can act on, or None.

    Covers the project's :class:`~rs_vit.errors.RsVitError` (exit 2), well-known OS errors (disk
    full, read-only or forbidden folder, missing file), GDAL failures reading or writing rasters
    and running out of memory (exit 2). Anything else is a bug: None.
    """
    from rs_vit.errors import RsVitError
    from rs_vit.io.atomic import os_error_message

    if isinstance(exc, RsVitError):
        return str(exc), 2
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return ("Out of memory; lower --batch-size (or --tile-size), close other programs, or use "
                "a machine with more memory."), 2
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    mod = type(exc).__module__ or ""
    if mod.startswith(("rasterio", "pyogrio", "fiona")):  # GDAL's errors (RasterioIOError, CPLE_*)
        detail = _gdal_detail(exc)
        if "No space left" in detail:
            return f"Disk full ({detail}); free space or choose another output folder, then retry.", 2
        return (f"GDAL could not read or write a raster ({detail}); the file may be corrupt, "
                "truncated or not a raster: re-export or re-download it."), 2
    if isinstance(exc, OSError):
        msg = os_error_message(exc)
        if msg is not None:
            return msg, 2
    if type(exc).__name__ == "SafetensorError" or mod.startswith("safetensors"):
        if "No space left" in str(exc) or "os error 28" in str(exc):
            return f"Disk full ({text}); free space or choose another folder, then retry.", 2
        return f"A safetensors file could not be read or written ({text}); the checkpoint may be corrupt.", 2
    return None


def _gdal_detail(exc: BaseException) -> str:
    """The informative messages of a GDAL error and its causes (rasterio often raises a generic
    "Read failed. See previous exception for details." whose cause names the file and block)."""
    parts: list[str] = []
    cur: BaseException | None = exc
    seen: set[int] = set()
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        first = str(cur).strip().splitlines()[0] if str(cur).strip() else ""
        if first and "previous exception" not in first and first not in parts:
            parts.append(first)
        cur = cur.__cause__ or cur.__context__
    return "; ".join(reversed(parts)) or type(exc).__name__


def handle_errors(fn: F) -> F:
    """Turn failures into a one-line message on stderr and a non-zero exit code.

    * user errors (:class:`RsVitError`) and known environment failures (disk full, read-only
      folder, GDAL read/write errors, out of memory): ``Error: ...``, exit 2;
    * Ctrl-C / ``SIGTERM``: ``Interrupted ...``, exit 130 (outputs are atomic: nothing partial
      is left under a final name);
    * anything else (a bug): ``Unexpected error: ...``, exit 1.

    ``rs-vit --debug`` re-raises every exception with its full traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except KeyboardInterrupt as exc:
            if STATE["debug"]:
                raise
            from rs_vit.errors import Terminated

            what = "Terminated" if isinstance(exc, Terminated) else "Interrupted"
            ctx = click.get_current_context(silent=True)
            hint = (" Continue the run with `rs-vit train --resume RUN_DIR` (from its last completed epoch)."
                    if ctx is not None and ctx.info_name == "train" else "")
            typer.secho(f"{what}: no partial output was left under a final name.{hint}", fg="yellow", err=True)
            raise typer.Exit(143 if isinstance(exc, Terminated) else 130) from None
        except Exception as exc:
            if STATE["debug"]:
                raise
            known = describe_failure(exc)
            if known is not None:
                msg, code = known
                typer.secho(f"Error: {_one_line(msg)}", fg="red", err=True)
                raise typer.Exit(code) from None
            first = _one_line(str(exc)) or "(no message)"
            typer.secho(f"Unexpected error: {type(exc).__name__}: {first} (run with --debug for the "
                        "traceback, and please report it)", fg="red", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _one_line(msg: str, limit: int = 1000) -> str:
    """``msg`` on one line (newlines folded), cut to ``limit`` characters."""
    flat = " ".join(part.strip() for part in str(msg).splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def echo(msg: str) -> None:
    typer.echo(msg)


def _usage_error_one_line(exc: click.ClickException) -> None:
    """Print a usage error (bad option value, missing file, unknown option) as one line.

    Replaces Typer's boxed, width-wrapped rendering, so that every failure of the CLI reads
    ``Error: <what> (see 'rs-vit CMD --help')`` and file names are never split across lines.
    """
    if exc.__class__.__name__ == "NoArgsIsHelpError":  # the help was printed instead
        return
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} {ctx.help_option_names[0]}')" if ctx is not None and ctx.help_option_names else ""
    typer.echo(f"Error: {_one_line(exc.format_message())}{hint}", err=True)


def _install_usage_error_format() -> None:
    try:
        from typer import rich_utils
    except ImportError:  # Typer without rich prints click's plain (already short) message
        return
    if hasattr(rich_utils, "rich_format_error"):
        rich_utils.rich_format_error = _usage_error_one_line  # type: ignore[assignment]


def _register_commands() -> None:
    """Import every command module in this package; each adds itself to ``app``."""
    import importlib
    import pkgutil

    import rs_vit.cli as pkg

    for mod in sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)):
        if mod not in ("app",) and not mod.startswith("_"):
            importlib.import_module(f"rs_vit.cli.{mod}")


_install_usage_error_format()
_register_commands()
