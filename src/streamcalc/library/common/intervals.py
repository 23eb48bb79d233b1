"""Intervals as operator config writes them: one string in the notation EnOS offers as
"OpenClose" + "Min-Max".

`(x,y)`, `(x,y]`, `[x,y)`, `[x,y]`, `(-inf,y)`, `(-inf,y]`, `(x,+inf)`, `[x,+inf)` and
`(-inf,+inf)`. Infinity may be written `inf`, `infinity` or `∞` (any case), with an optional
`+` on the upper end and a required `-` on the lower end; an infinite end must be open. Bounds
are plain decimals (`2`, `-0.99`, `1e3`); an integer bound stays an int. Spaces around the
parts are ignored. The interval must not be empty: x < y, or x == y with both ends closed.
OffLimitTagger tags against one, PowerIntegrator and the templates bound values with one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

_INFINITY = re.compile(r"(?:inf|infinity|∞)", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Interval:
    """A parsed interval; None bounds are infinite (and open)."""

    min: int | float | None
    max: int | float | None
    min_including: bool
    max_including: bool

    def contains(self, x: int | float) -> bool:
        lo, hi = self.min, self.max
        if lo is not None and (x < lo or (x == lo and not self.min_including)):
            return False
        return not (hi is not None and (x > hi or (x == hi and not self.max_including)))


def parse_interval(text: str) -> Interval:
    """`"[2,10)"` -> Interval; raises ValueError naming what is wrong."""
    s = text.strip()
    if len(s) < 2 or s[0] not in "([" or s[-1] not in ")]":
        raise ValueError(f"expected an interval such as '[2,10)' or '(-inf,5]', got {text!r}")
    parts = s[1:-1].split(",")
    if len(parts) != 2:
        raise ValueError(f"expected exactly one comma between the bounds, got {text!r}")
    lo = _bound(parts[0].strip(), True, text)
    hi = _bound(parts[1].strip(), False, text)
    min_including, max_including = s[0] == "[", s[-1] == "]"
    if (lo is None and min_including) or (hi is None and max_including):
        raise ValueError(f"an infinite end must be open, got {text!r}")
    empty = (
        lo is not None
        and hi is not None
        and (lo > hi or (lo == hi and not (min_including and max_including)))
    )
    if empty:
        raise ValueError(f"the interval {text!r} is empty")
    return Interval(lo, hi, min_including, max_including)


def _bound(part: str, lower: bool, text: str) -> int | float | None:
    """A finite bound, or None for infinity: `-inf` on the lower end, `inf`/`+inf` on the upper."""
    unsigned = part[1:] if part[:1] in "+-" else part
    if _INFINITY.fullmatch(unsigned):
        if part.startswith("-") != lower:
            end, allowed = ("lower", "-inf") if lower else ("upper", "+inf")
            raise ValueError(f"the {end} bound of {text!r} can only be {allowed} when infinite")
        return None
    if not _NUMBER.fullmatch(part):
        raise ValueError(f"bound {part!r} of {text!r} is not a number")
    value = int(part) if _INTEGER.fullmatch(part) else float(part)
    if not math.isfinite(value):
        raise ValueError(f"bound {part!r} of {text!r} is too large")
    return value


def _check_interval(text: str) -> str:
    parse_interval(text)
    return text


IntervalText = Annotated[str, AfterValidator(_check_interval)]
"""A pydantic field holding an interval such as `[0,100)` or `(-inf,5]`."""
