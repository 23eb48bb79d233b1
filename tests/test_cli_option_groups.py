"""Options declared once (`cli.option_groups`): a group's fields stand in its place, and the
command gets the group. The connection options are one: every remote command takes them, after
its own, with their environment variables; no local command does (`accounts create --org-id` is
the org of a new account, read from no variable)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pytest
import typer
from typer.testing import CliRunner

from streamcalc.cli import app
from streamcalc.cli.option_groups import option_groups

CONNECTION = [
    ("--url", "STREAMCALC_URL"),
    ("--org-id", "STREAMCALC_ORG_ID"),
    ("--app-key", "STREAMCALC_APP_KEY"),
    ("--app-secret", "STREAMCALC_APP_SECRET"),
]
REMOTE = [
    "pipeline save",
    "pipeline release",
    "pipeline pause",
    "pipeline stop",
    "pipeline start",
    "pipeline list",
    "pipeline show",
    "pipeline lag",
    "state get",
    "state delete",
    "state deletions",
    "state restore",
    "produce",
    "consume",
]


def commands(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every command under `group` by its full name (typer's own click: no click types here)."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found.update(commands(command, f"{prefix}{name} "))
        else:
            found[f"{prefix}{name}"] = command
    return found


ALL = commands(typer.main.get_group(app))


@pytest.mark.parametrize("name", REMOTE)
def test_a_remote_command_ends_with_the_connection_options(name: str) -> None:
    options = [p for p in ALL[name].params if p.param_type_name == "option"]

    assert [(o.opts[0], o.envvar) for o in options[-4:]] == CONNECTION
    assert all(o.name != "connection" for o in options)


def test_no_local_command_takes_them() -> None:
    local = set(ALL) - set(REMOTE)

    assert local == {"run", "serve", "log append", "log create", "log read", "log topics", "accounts create"}
    for name in local:
        assert not {p.envvar for p in ALL[name].params} & {env for _, env in CONNECTION}, name


@dataclass(frozen=True)
class Target:
    name: Annotated[str, typer.Argument(help="What to greet.")]
    loud: Annotated[bool, typer.Option("--loud", envvar="TEST_LOUD")] = False


def test_a_group_stands_in_its_place_and_the_command_gets_it() -> None:
    calls: list[tuple[int, Target, str]] = []
    toy = typer.Typer(add_completion=False)

    @toy.command()
    @option_groups
    def greet(times: int, target: Target, suffix: str = "!") -> None:
        """Greet a target."""
        calls.append((times, target, suffix))

    result = CliRunner().invoke(toy, ["3", "world", "--suffix", "?"], env={"TEST_LOUD": "1"})

    assert result.exit_code == 0, result.output
    assert calls == [(3, Target("world", loud=True), "?")]
    command = typer.main.get_command(toy)
    assert [p.name for p in command.params] == ["times", "name", "loud", "suffix"]
    assert command.help == "Greet a target."
