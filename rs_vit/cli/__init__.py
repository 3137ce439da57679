"""The ``rs-vit`` command line: a thin Typer app over the library's public API."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from rs_vit.cli.app import app


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    from rs_vit.errors import Terminated

    raise Terminated()


def install_signal_handlers() -> None:
    """Make ``SIGTERM`` (a job scheduler's or ``kill``'s stop) clean up like Ctrl-C does."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; user errors print one line and exit 2 (no traceback unless --debug)."""
    from rs_vit.errors import RsVitError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    install_signal_handlers()
    try:
        app(args=args, prog_name="rs-vit", standalone_mode=True)
    except RsVitError as exc:  # pragma: no cover - handle_errors inside each command handles it
        if debug:
            raise
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


__all__ = ["app", "install_signal_handlers", "main"]
