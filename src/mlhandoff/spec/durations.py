"""Durations as monitoring rules write them: a whole number and one unit, as in Prometheus.

``30s``, ``5m``, ``1h``, ``1d``, ``1w``: the same text goes into the rendered alert rules
(``for: 10m``, ``[1h]``) and into ``mlhandoff monitor``'s windows, so both read one duration.
"""

from __future__ import annotations

import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
PATTERN = r"^(0|[1-9][0-9]{0,8})(s|m|h|d|w)$"
_RE = re.compile(PATTERN)


def duration_seconds(text: str) -> int:
    """Seconds in ``text`` (``"5m"`` → 300); ValueError saying how to write one."""
    match = _RE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: write a whole number and one unit of "
            "s, m, h, d or w, e.g. 30s, 5m, 1h, 1d"
        )
    return int(match.group(1)) * UNITS[match.group(2)]


def format_duration(seconds: int) -> str:
    """The shortest text for ``seconds`` in the largest unit that divides it (``3600`` → 1h)."""
    for unit, size in sorted(UNITS.items(), key=lambda kv: -kv[1]):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
