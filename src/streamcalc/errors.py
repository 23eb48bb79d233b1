"""Root of every exception streamcalc raises on purpose, and the translation of a backend
library's exceptions into ours."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

_C = TypeVar("_C", bound=type)


class StreamcalcError(Exception):
    """Base class; catch this to handle any deliberate streamcalc failure."""


def translate_errors(
    source: type[BaseException] | tuple[type[BaseException], ...], error: type[StreamcalcError], label: str
) -> Callable[[_C], _C]:
    """Class decorator: `source` raised by any public method, its own or inherited (or while
    iterating what a public generator method yields) is raised as `error`, prefixed by `label`,
    the cause chained, so callers see only our exceptions whatever the backend's library."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isgeneratorfunction(method):

            @functools.wraps(method)
            def generate(*args: Any, **kwargs: Any) -> Iterator[Any]:
                try:
                    yield from method(*args, **kwargs)
                except source as e:
                    raise error(f"{label}: {e}") from e

            return generate

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except source as e:
                raise error(f"{label}: {e}") from e

        return call

    def decorate(cls: _C) -> _C:
        seen: set[str] = set()
        for klass in cls.__mro__[:-1]:  # the methods it inherits too (its base's are wrapped here)
            for name, member in list(vars(klass).items()):
                if name in seen:
                    continue
                seen.add(name)
                if callable(member) and (not name.startswith("_") or name == "__init__"):
                    setattr(cls, name, wrap(member))
        return cls

    return decorate
