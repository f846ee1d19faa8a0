"""Durations as people write them in a spec (``90s``, ``10m``, ``1h30m``, ``3d``, ``1w``).

The grammar is Prometheus's (integers with a unit, units largest first, ``ms`` to ``w``), so a
window or a ``for:`` written here means the same in a rendered alert rule, an Argo analysis and
``mlhandoff monitor``'s windows: one grammar, one parser for monitoring and rollout alike.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

_UNITS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
_PART = re.compile(r"(\d+)(ms|w|d|h|m|s)")
_ORDER = list(_UNITS)
#: Seconds per unit, for the units a whole-second duration is written in.
UNITS = {unit: ms // 1000 for unit, ms in _UNITS.items() if ms >= 1000}
#: The grammar as a JSON Schema pattern (editors check durations as they are typed).
PATTERN = r"^(?=\d)(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$"


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


def duration_seconds(text: str) -> int:
    """Whole seconds in ``text`` (``"5m"`` -> 300): monitoring windows step in seconds."""
    ms = round(parse_duration(text).total_seconds() * 1000)
    if ms % 1000:
        raise ValueError(f"{text!r}: monitoring windows are whole seconds (e.g. 30s, 5m, 1h)")
    return ms // 1000


def _check(text: str) -> str:
    parse_duration(text)
    return text


#: A duration field: kept as written (the frozen spec shows the author's words), checked at load.
Duration = Annotated[
    str, AfterValidator(_check), WithJsonSchema({"type": "string", "pattern": PATTERN})
]


def _whole_seconds(text: str) -> str:
    duration_seconds(text)
    return text


#: A monitoring window or ``for:``: a duration in whole seconds, the step monitor windows by.
Window = Annotated[
    str, AfterValidator(_whole_seconds), WithJsonSchema({"type": "string", "pattern": PATTERN})
]


def format_duration(delta: timedelta | int) -> str:
    """The shortest form of ``delta`` (a timedelta, or whole seconds) in the same grammar
    (``86400s`` -> ``1d``, ``5400`` -> ``1h30m``)."""
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else delta
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = ""
    for unit, size in _UNITS.items():
        count, ms = divmod(ms, size)
        if count:
            out += f"{count}{unit}"
    return out
