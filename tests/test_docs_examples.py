"""Every example pipeline in the operator and template docs is a valid pipeline (a JSON block
that starts with `{"stages"` or `{"templateType"`), and every module or name they cite as
`streamcalc.x.y` exists."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

from streamcalc.pipeline import build_graph, load_pipeline_document

DOCS = Path(__file__).parent.parent / "docs"
_JSON_BLOCK = re.compile(r"```json\n(.*?)```", re.S)
_PIPELINE = re.compile(r'^\{"(stages|templateType)"')
_CITED = re.compile(r"`(streamcalc(?:\.\w+)+)`")


def examples() -> list[tuple[str, str]]:
    found = []
    for page in sorted([*DOCS.glob("operators/*.md"), *DOCS.glob("templates*.md")]):
        found += [
            (page.name, block) for block in _JSON_BLOCK.findall(page.read_text()) if _PIPELINE.match(block)
        ]
    return found


def test_every_operator_page_has_an_example_pipeline() -> None:
    pages = {p.name for p in DOCS.glob("operators/*.md")}
    with_examples = {name for name, _ in examples()}
    linked = {"RecordRestorer.md"}  # points to RecordCapturer's example, which uses both
    assert pages - with_examples == linked


@pytest.mark.parametrize(("page", "block"), examples(), ids=lambda v: v if v.endswith(".md") else "")
def test_example_pipelines_build(page: str, block: str) -> None:
    build_graph(load_pipeline_document(json.loads(block)))


def cited() -> list[str]:
    pages = [*DOCS.glob("*.md"), *DOCS.glob("operators/*.md"), DOCS.parent / "README.md"]
    return sorted({name for page in pages for name in _CITED.findall(page.read_text())})


@pytest.mark.parametrize("name", cited())
def test_cited_modules_and_names_exist(name: str) -> None:
    """`streamcalc.a.b` is a module, or a name in the longest module it starts with."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            found = getattr(found, attr)
        return
    raise AssertionError(f"{name} names no module")
