"""The Typer app: global options and the command modules, one module per command."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

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


def handle_errors(fn: F) -> F:
    """Turn the library's :class:`RsVitError` into a one-line message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from rs_vit.errors import RsVitError

        try:
            return fn(*args, **kwargs)
        except RsVitError as exc:
            if STATE["debug"]:
                raise
            typer.secho(f"Error: {exc}", fg="red", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.secho("Interrupted: no partial output was left under the final name.", fg="yellow", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def echo(msg: str) -> None:
    typer.echo(msg)


def err(msg: str) -> None:
    typer.echo(msg, err=True)


def is_tty() -> bool:
    return sys.stderr.isatty()


def _register_commands() -> None:
    """Import every command module in this package; each adds itself to ``app``."""
    import importlib
    import pkgutil

    import rs_vit.cli as pkg

    for mod in sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)):
        if mod not in ("app",) and not mod.startswith("_"):
            importlib.import_module(f"rs_vit.cli.{mod}")


_register_commands()
