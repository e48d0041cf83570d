"""The modules of gateway.chargepoint import each other as a tree: no cycle, not even one for typing only.

Read from the source with `ast` (nothing is imported), so a cycle hidden behind `if TYPE_CHECKING:`
counts as well.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import gateway.chargepoint

PACKAGE = "gateway.chargepoint"
ROOT = Path(gateway.chargepoint.__file__).parent
MODULES = {f"{PACKAGE}.{path.stem}": path for path in ROOT.glob("*.py") if path.stem != "__init__"}


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The modules of the package that `node`, in `module`, imports."""
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        if node.level:  # relative: `from .x import y`, `from . import x`, `from ..chargepoint import x`
            base = module.split(".")[: -node.level]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        # `from package import module` imports the module; `from module import name` the module
        names = {source} | {f"{source}.{alias.name}" for alias in node.names}
    return {name for name in names if name in MODULES}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(module: str, source: str | None = None) -> tuple[set[str], set[str]]:
    """(modules of the package `module` imports, those of them imported under `if TYPE_CHECKING:`)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8") if source is None else source)
    typing_only = {node for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                   for statement in block.body for node in ast.walk(statement)}
    found: set[str] = set()
    for_typing: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = _imported(module, node)
            found |= names
            if node in typing_only:
                for_typing |= names
    return found, for_typing


def test_the_reader_sees_relative_absolute_and_typing_only_imports():
    # A check that can find nothing proves nothing: these edges exist.
    assert f"{PACKAGE}.session" in imports(f"{PACKAGE}.service")[0]
    assert f"{PACKAGE}.authorization" in imports(f"{PACKAGE}.handlers")[0]
    source = """
import typing
import gateway.chargepoint.errors
from . import rate
from ..chargepoint.transport import Closed
from ..store.store import Store
if typing.TYPE_CHECKING:
    from .session import Session
"""
    found, for_typing = imports(f"{PACKAGE}.registry", source)
    assert found == {f"{PACKAGE}.{name}" for name in ("errors", "rate", "transport", "session")}
    assert for_typing == {f"{PACKAGE}.session"}


def test_no_module_imports_from_the_package_for_typing_only():
    # A typing-only import is how a cycle hides: the module it points to imports this one.
    assert {module: sorted(imports(module)[1]) for module in MODULES if imports(module)[1]} == {}


def test_the_imports_of_the_package_form_no_cycle():
    graph = {module: imports(module)[0] for module in MODULES}
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle (each imports the next): {' -> '.join(reversed(exc.args[1]))}")
    assert set(order) == set(MODULES)
