"""Options declared once for many commands: an option group is a frozen dataclass whose fields
are typer parameters (`Annotated[type, typer.Option(...)]`, with their defaults).

A command takes the group as one parameter; `option_groups` shows typer the group's fields in
its place and calls the command with the group built from them.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any


def option_groups(command: Callable[..., None]) -> Callable[..., None]:
    """`command` as typer sees it: each parameter whose annotation is a dataclass replaced, in
    its place, by that dataclass's fields."""
    signature = inspect.signature(command, eval_str=True)
    groups: dict[str, tuple[type[Any], list[str]]] = {}
    shown: list[inspect.Parameter] = []
    for param in signature.parameters.values():
        group = param.annotation
        if not (isinstance(group, type) and dataclasses.is_dataclass(group)):
            shown.append(param)
            continue
        hints = typing.get_type_hints(group, include_extras=True)
        fields = dataclasses.fields(group)
        groups[param.name] = (group, [f.name for f in fields])
        shown += [
            inspect.Parameter(
                f.name,
                param.kind,
                default=inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default,
                annotation=hints[f.name],
            )
            for f in fields
        ]

    @functools.wraps(command)
    def expanded(**kwargs: Any) -> None:
        for name, (group, fields) in groups.items():
            kwargs[name] = group(**{f: kwargs.pop(f) for f in fields})
        command(**kwargs)

    expanded.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
    return expanded
