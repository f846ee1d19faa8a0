"""Durations as people write them in a spec (``90s``, ``10m``, ``1h30m``, ``3d``, ``1w``).

The grammar is Prometheus's (integers with a unit, units largest first, ``ms`` to ``w``), so a
window or a ``for:`` written here means the same in a rendered alert rule or Argo analysis.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator

_UNITS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
_PART = re.compile(r"(\d+)(ms|w|d|h|m|s)")
_ORDER = list(_UNITS)


def parse_duration(text: str) -> timedelta:
    """``text`` as a timedelta; ValueError saying what is accepted when it is not a duration."""
    value = text.strip() if isinstance(text, str) else text
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a duration: {text!r}; write e.g. 30s, 10m, 1h30m, 3d or 1w")
    total, pos, last = 0, 0, -1
    for match in _PART.finditer(value):
        if match.start() != pos:
            break
        rank = _ORDER.index(match.group(2))
        if rank <= last:
            raise ValueError(f"{text!r}: units go largest first, each once (e.g. 1h30m)")
        last, pos = rank, match.end()
        total += int(match.group(1)) * _UNITS[match.group(2)]
    if pos != len(value):
        raise ValueError(
            f"not a duration: {text!r}; write a number and a unit (ms, s, m, h, d, w), "
            "e.g. 30s, 10m, 1h30m, 3d"
        )
    return timedelta(milliseconds=total)


def _check(text: str) -> str:
    parse_duration(text)
    return text


#: A duration field: kept as written (the frozen spec shows the author's words), checked at load.
Duration = Annotated[str, AfterValidator(_check)]


def format_duration(delta: timedelta) -> str:
    """The shortest form of ``delta`` in the same grammar (``86400s`` -> ``1d``)."""
    ms = round(delta.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    out = ""
    for unit, size in _UNITS.items():
        count, ms = divmod(ms, size)
        if count:
            out += f"{count}{unit}"
    return out
