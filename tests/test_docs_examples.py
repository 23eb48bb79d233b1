"""Every example pipeline in the operator and template docs is a valid pipeline: a JSON block
that starts with `{"stages"` or `{"templateType"`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from streamcalc.pipeline import build_graph, load_pipeline_document

DOCS = Path(__file__).parent.parent / "docs"
_JSON_BLOCK = re.compile(r"```json\n(.*?)```", re.S)
_PIPELINE = re.compile(r'^\{"(stages|templateType)"')


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
