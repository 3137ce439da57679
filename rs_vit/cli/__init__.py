"""The ``rs-vit`` command line: a thin Typer app over the library's public API."""

from __future__ import annotations

import sys

from rs_vit.cli.app import app


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; user errors print one line and exit 2 (no traceback unless --debug)."""
    from rs_vit.errors import RsVitError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        app(args=args, prog_name="rs-vit", standalone_mode=True)
    except RsVitError as exc:  # pragma: no cover - standalone_mode handles via callback
        if debug:
            raise
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


__all__ = ["app", "main"]
