"""What the commands read (`streamcalc.cli.inputs`): NDJSON or a JSON array, from a file or stdin,
and a JSON object; bad input is one line naming where, and exit code 2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from streamcalc.cli import app
from streamcalc.cli.inputs import read_items, read_object

runner = CliRunner()


def failure(call: object, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The exit code and stderr (wrapping undone) of a read that must fail."""
    with pytest.raises(typer.Exit) as info:
        call()  # type: ignore[operator]
    return info.value.exit_code, " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize(
    "text",
    ['[{"a": 1}, 2, "x"]', '  \n[{"a": 1},\n 2, "x"]\n', '{"a": 1}\n\n2\n  \n"x"\n', '{"a": 1}\n2\n"x"'],
    ids=["array", "indented array", "ndjson with blank lines", "ndjson without a final newline"],
)
def test_an_array_and_ndjson_give_the_same_items(tmp_path: Path, text: str) -> None:
    (tmp_path / "in").write_text(text)

    assert read_items(tmp_path / "in") == [{"a": 1}, 2, "x"]


def test_dash_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"a": 1}\n{"b": 2}\n'))

    assert read_items(Path("-")) == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"a": 1}\n\n{oops\n', " line 3: Expecting property name"),  # its line in the file
        ('[{"a": 1},\n {oops}]', ": Expecting property name enclosed in double quotes: line 2 column 3"),
    ],
    ids=["ndjson", "array"],
)
def test_bad_json_names_the_file_and_the_place_in_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str
) -> None:
    (tmp_path / "in").write_text(text)

    code, err = failure(lambda: read_items(tmp_path / "in"), capsys)

    assert code == 2 and err.startswith(f"{tmp_path / 'in'}{where}")


def test_a_missing_file_is_exit_2_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = failure(lambda: read_items(tmp_path / "nowhere.ndjson"), capsys)

    assert code == 2 and err.startswith(f"{tmp_path / 'nowhere.ndjson'}: [Errno 2]")


def test_an_object_must_be_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.json").write_text('{"stages": []}')
    (tmp_path / "array.json").write_text("[]")

    assert read_object(tmp_path / "p.json") == {"stages": []}
    code, err = failure(lambda: read_object(tmp_path / "array.json"), capsys)
    assert code == 2 and err == f"{tmp_path / 'array.json'}: a pipeline is a JSON object"


def test_an_object_read_without_stdin_takes_dash_for_a_file_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("{}"))

    code, err = failure(lambda: read_object(Path("-"), stdin=False), capsys)

    assert code == 2 and err.startswith("-: [Errno 2]")


def test_log_append_reads_the_same_way_and_names_a_bad_line(tmp_path: Path) -> None:
    """`log append` and `produce` share the reader: a bad line is exit 2 before anything is appended."""
    good = {"orgId": "o", "modelId": "m", "modelIdPath": "/m", "assetId": "a", "pointId": "p", "time": 1}
    lines = json.dumps({**good, "value": 1}) + "\n{oops\n"

    result = runner.invoke(app, ["log", "append", "T", "-", "--data-dir", str(tmp_path)], input=lines)

    assert result.exit_code == 2 and "- line 2: Expecting property name" in result.stderr
    assert not (tmp_path / "log").exists()  # failed before the log was opened
