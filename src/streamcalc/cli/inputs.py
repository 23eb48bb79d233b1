"""What the commands read: a file or stdin ('-'), as a JSON object or as a list of items (a JSON
array, or NDJSON). Bad input ends the command with exit code 2 and says where it is wrong."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from streamcalc.cli.output import fail


def read_text(source: Path, *, stdin: bool = True) -> str:
    """The text of `source`, or of stdin when it is '-' and `stdin` allows that."""
    try:
        return sys.stdin.read() if stdin and str(source) == "-" else source.read_text()
    except OSError as e:
        fail(f"{source}: {e}", 2)


def read_object(source: Path, *, stdin: bool = True) -> dict[str, Any]:
    """A pipeline: one JSON object."""
    doc = _json(read_text(source, stdin=stdin), str(source))
    if not isinstance(doc, dict):
        fail(f"{source}: a pipeline is a JSON object", 2)
    return doc


def read_items(source: Path) -> list[Any]:
    """A JSON array, or one JSON value per non-blank line (NDJSON); an error names its line."""
    text = read_text(source)
    if text.lstrip().startswith("["):
        items: list[Any] = _json(text, str(source))
        return items
    lines = enumerate(text.splitlines(), 1)
    return [_json(line, f"{source} line {n}") for n, line in lines if line.strip()]


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        fail(f"{where}: {e}", 2)
