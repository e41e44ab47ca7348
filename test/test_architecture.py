"""The house rules, kept by a test: each room imports only the rooms below it
(docs/architecture.md), so data flows one way and no cycle can hide in a function-local import."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# What each room of the library may import (besides itself), lowest level first.
ALLOWED = {
    "dialects": set(),
    "semantics": {"dialects"},
    "frontend": {"dialects", "semantics"},
    "passes": {"dialects", "semantics"},
    "lowering": {"dialects", "semantics"},
    "backend": {"runtime"},
    "driver": {"dialects", "semantics", "frontend", "passes", "lowering", "backend"},
    "api": {"driver"},
    "tools": {"dialects", "semantics", "frontend", "passes", "lowering", "backend", "driver"},
    "fuzz": {"dialects", "semantics", "frontend", "backend", "driver", "api"},
    "models": set(),
}


def _imported_rooms(path: Path) -> set[str]:
    """The tinyattn rooms a module imports, at any depth (function-local imports included)."""
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "tinyattn" and len(parts) > 1:
                rooms.add(parts[1])
    return rooms


def _modules(room: str) -> list[Path]:
    return sorted((REPO / room).rglob("*.py"))


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_room_imports_only_the_rooms_below_it(room):
    assert _modules(room), f"room {room}/ has no modules"
    broken = {
        str(path.relative_to(REPO)): sorted(rooms)
        for path in _modules(room)
        if (rooms := _imported_rooms(path) - ALLOWED[room] - {room})
    }
    assert not broken, f"{room}/ may import only {sorted(ALLOWED[room])}: {broken}"


def test_every_room_is_ruled():
    """A new top-level package must get a rule before it can hold library code."""
    packages = {path.parent.name for path in REPO.glob("*/__init__.py")}
    assert packages - {"runtime"} <= set(ALLOWED)


def test_the_rule_checker_sees_local_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from tinyattn.tools import run\n")
    assert _imported_rooms(module) == {"tools"}
