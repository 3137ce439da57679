"""The generated CLI reference (docs/cli.md) must match the Typer app, so it cannot drift."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _make_docs():
    spec = importlib.util.spec_from_file_location("make_docs", ROOT / "docs" / "make_docs.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_reference_is_up_to_date():
    text = _make_docs().render()
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == text, "docs/cli.md is out of date: run `make docs` (python docs/make_docs.py)"


def test_cli_reference_covers_every_command_and_option():
    import typer

    from rs_vit.cli import app

    text = _make_docs().render()
    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        assert f"## `rs-vit {name}`" in text
        for p in cmd.params:
            if p.param_type_name == "option" and not p.hidden:
                assert f"`{p.opts[-1]}" in text or p.opts[-1] in text, (name, p.opts)


def test_check_mode_detects_drift(tmp_path: Path):
    mod = _make_docs()
    stale = tmp_path / "cli.md"
    stale.write_text("old\n")
    assert mod.main(["--check", "--out", str(stale)]) == 1
    assert mod.main(["--out", str(stale)]) == 0
    assert mod.main(["--check", "--out", str(stale)]) == 0
