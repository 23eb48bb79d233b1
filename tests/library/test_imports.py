"""How the library hangs together: its modules import each other without a cycle, the
registry knows every operator type through builtin.py, and no operator module is imported by
another, by the shared vocabulary (common, expressions) or by the pipeline package."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Any

import grimp
import pytest

import streamcalc.library
from streamcalc.library import OperatorType, get_operator, operator_names
from streamcalc.library.builtin import BUILTIN_OPERATORS

LIBRARY = "streamcalc.library"
GATHERERS = {f"{LIBRARY}.builtin", f"{LIBRARY}.registry"}
"""They hold operator types of other modules."""


@cache
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("streamcalc", cache_dir=None)


@cache
def operator_modules() -> dict[str, list[OperatorType[Any]]]:
    """Each library module defining operator types, with those types."""
    found = {}
    for info in pkgutil.walk_packages(streamcalc.library.__path__, f"{LIBRARY}."):
        if info.ispkg or info.name in GATHERERS:
            continue
        module = vars(importlib.import_module(info.name)).values()
        if types := [v for v in module if isinstance(v, OperatorType)]:
            found[info.name] = types
    return found


@pytest.mark.parametrize(
    "package", [LIBRARY, f"{LIBRARY}.common", f"{LIBRARY}.expressions", f"{LIBRARY}.windows"]
)
def test_no_import_cycle(package: str) -> None:
    """Between the modules and subpackages of each package (as lint-imports' acyclic_siblings
    checks): grimp finds no import it would have to drop to break a cycle."""
    assert graph().nominate_cycle_breakers(package) == set()


def test_the_registry_holds_every_operator_type_of_the_library_once() -> None:
    defined = [op for types in operator_modules().values() for op in types]
    assert sorted(op.name for op in defined) == operator_names()
    assert {id(op) for op in BUILTIN_OPERATORS} == {id(op) for op in defined}
    assert all(get_operator(op.name) is op for op in BUILTIN_OPERATORS)
    imported = graph().find_modules_directly_imported_by(f"{LIBRARY}.builtin")
    assert imported - {f"{LIBRARY}.base"} == set(operator_modules())


@pytest.mark.parametrize(
    "importer", ["streamcalc.pipeline", f"{LIBRARY}.common", f"{LIBRARY}.expressions", *operator_modules()]
)
def test_only_builtin_imports_operator_modules(importer: str) -> None:
    g = graph()
    used = {
        m for i in (importer, *g.find_descendants(importer)) for m in g.find_modules_directly_imported_by(i)
    }
    assert used & set(operator_modules()) == set()
