"""The import floors of ../shared/ARCHITECTURE.md, checked by parsing every module with ``ast``.

Move 0 of the redesign (issue 13): today's breaks are listed here by name and pinned two ways:
``test_no_new_*`` fail on any break not in the lists (so none is added while the moves happen), and
the ``strict`` xfails below flip to failures as soon as a move removes the last break of its kind,
which is the moment to delete the list entry and the xfail.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "rs_vit"

#: Floor of each room (longest prefix wins); an import may only point to a lower floor, or stay in
#: its own package on the same floor (``evaluate/metrics`` -> ``evaluate/report``). Old and new names both listed, so the test keeps working through the renames.
FLOORS: dict[str, float] = {
    "rs_vit.errors": 1, "rs_vit._version": 1,
    "rs_vit.io": 2, "rs_vit.config": 2, "rs_vit.device": 2,
    "rs_vit.data": 3, "rs_vit.models": 3,
    "rs_vit.evaluate.metrics": 4, "rs_vit.evaluate.boundary": 4, "rs_vit.evaluate.errormap": 4,
    "rs_vit.evaluate.report": 4,
    "rs_vit.infer": 5,
    "rs_vit.train": 6, "rs_vit.training": 6,
    "rs_vit.evaluate.evaluator": 7, "rs_vit.evaluate": 7,
    "rs_vit.evaluate.compare": 8, "rs_vit.experiments": 8, "rs_vit.baseline": 8,
    "rs_vit": 8.5,  # the lazy face: what the CLI and the demo import
    "rs_vit.cli": 9, "rs_vit.demo": 9, "rs_vit.__main__": 10,
}

#: Today's upward or sideways arrows (importer, imported).
KNOWN_UP = {
    ("rs_vit.config", "rs_vit.io.labels"),  # sideways on floor 2
    ("rs_vit.evaluate", "rs_vit.evaluate.compare"),
    ("rs_vit.evaluate.compare", "rs_vit.baseline"),
    ("rs_vit.models.checkpoint", "rs_vit"),  # __version__ from the face
    ("rs_vit.models.export", "rs_vit"),
    ("rs_vit.models.registry", "rs_vit.train.distill"),
}

#: Today's uses of another module's ``_private`` names (importer, module, name).
KNOWN_PRIVATE = {
    ("rs_vit.baseline", "rs_vit.evaluate.evaluator", "_Accumulator"),
    ("rs_vit.baseline", "rs_vit.evaluate.evaluator", "_validation_scenes"),
    ("rs_vit.evaluate.compare", "rs_vit.config", "_resolve_paths"),
    ("rs_vit.evaluate.compare", "rs_vit.evaluate.report", "_atomic_write"),
    ("rs_vit.evaluate.errormap", "rs_vit.evaluate.report", "_atomic_write"),
    ("rs_vit.train.loop", "rs_vit.models.checkpoint", "_load_state"),
    ("rs_vit.io.writers", "rs_vit.io.atomic", "_cleanup"),
    ("rs_vit.io.writers", "rs_vit.io.atomic", "_write_failed"),
}

#: Modules that sit on an import circle today (counting imports inside functions).
KNOWN_CYCLE_MEMBERS = {
    "rs_vit", "rs_vit.evaluate.evaluator", "rs_vit.infer.engine",
    "rs_vit.infer.onnx_backend", "rs_vit.models.checkpoint", "rs_vit.models.export", "rs_vit.models.foreign",
    "rs_vit.models.mim", "rs_vit.models.pretrained", "rs_vit.models.registry", "rs_vit.models.zoo",
    "rs_vit.train.ddp", "rs_vit.train.distill", "rs_vit.train.loop", "rs_vit.train.pretrain",
    "rs_vit.train.resume", "rs_vit.cli", "rs_vit.cli.app",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> tuple[set[str], list[tuple[str, str, str | None]]]:
    """Every module of the package and every import of an rs_vit module (module level or not)."""
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    edges: list[tuple[str, str, str | None]] = []
    for mod, path in files.items():
        here = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges += [(mod, a.name, None) for a in node.names if a.name.split(".")[0] == "rs_vit"]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                if base.split(".")[0] != "rs_vit":
                    continue
                for a in node.names:
                    full = f"{base}.{a.name}"
                    edges.append((mod, full if full in files else base, a.name))
    return set(files), edges


def _room(mod: str) -> str:
    return max((k for k in FLOORS if mod == k or mod.startswith(k + ".")), key=len)


def _up_arrows() -> set[tuple[str, str]]:
    _, edges = _imports()
    out = set()
    for src, dst, _name in edges:
        a, b = _room(src), _room(dst)
        same_package = FLOORS[a] == FLOORS[b] and src.split(".")[:2] == dst.split(".")[:2]
        if a != b and not same_package and FLOORS[b] >= FLOORS[a]:
            out.add((src, dst))
    return out


def _private_uses() -> set[tuple[str, str, str]]:
    _, edges = _imports()
    return {(s, d, n) for s, d, n in edges
            if n and n.startswith("_") and not n.startswith("__") and s != d and not d.startswith(s + ".")}


def _cycle_members() -> set[str]:
    mods, edges = _imports()
    graph: dict[str, set[str]] = defaultdict(set)
    for s, d, _n in edges:
        if s != d and d in mods:
            graph[s].add(d)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    members: set[str] = set()

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                members.update(comp)

    for m in sorted(mods):
        if m not in index:
            visit(m)
    return members


def test_every_module_has_a_floor() -> None:
    mods, _ = _imports()
    assert all(_room(m) in FLOORS for m in mods)


def test_no_new_upward_imports() -> None:
    new = _up_arrows() - KNOWN_UP
    assert not new, f"imports that point up or sideways (ARCHITECTURE.md floors): {sorted(new)}"


def test_no_new_private_reach_ins() -> None:
    new = _private_uses() - KNOWN_PRIVATE
    assert not new, f"another module's _private names used: {sorted(new)}"


def test_no_new_modules_on_import_circles() -> None:
    new = _cycle_members() - KNOWN_CYCLE_MEMBERS
    assert not new, f"modules newly on an import circle: {sorted(new)}"


def test_known_lists_hold_only_real_breaks() -> None:
    """Entries fixed by a move must leave the lists (so they shrink to nothing)."""
    assert KNOWN_UP <= _up_arrows()
    assert KNOWN_PRIVATE <= _private_uses()


@pytest.mark.xfail(strict=True, reason="issue 13: today's upward arrows (KNOWN_UP); the redesign removes them")
def test_imports_only_go_down() -> None:
    assert not _up_arrows()


@pytest.mark.xfail(strict=True, reason="issue 13: models/ and train/ circles (KNOWN_CYCLE_MEMBERS)")
def test_no_import_circles() -> None:
    assert not _cycle_members()


@pytest.mark.xfail(strict=True, reason="issue 13: private reach-ins (KNOWN_PRIVATE)")
def test_no_private_names_across_modules() -> None:
    assert not _private_uses()
