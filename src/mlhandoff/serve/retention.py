"""Deleting prediction-log files older than the retention period (``privacy.log_retention``).

The prediction log (:mod:`mlhandoff.serve.predlog`) writes ``predictions-<stamp>-<seq>.parquet``
files, each ``.parquet.partial`` while open. A closed file whose last write (its modification
time) is older than the retention is deleted; an open one, anything else in the folder, links
and folders are never touched. ``mlhandoff logs prune`` calls :func:`prune`, and so does the log's
rotation when the server runs with a retention.
"""

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from mlhandoff.errors import InputError

#: Names of closed prediction-log files (what the log writes, and nothing else).
LOG_FILE = re.compile(r"^predictions-\d{8}T\d{6}-\d+\.parquet$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_retention(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w`` as a duration; anything else is an InputError."""
    match = re.fullmatch(r"\s*([1-9][0-9]{0,5})\s*([hdw])\s*", text)
    if not match:
        raise InputError(
            f"retention '{text}' is not a duration: use a whole number of hours, days or weeks, "
            "e.g. 12h, 30d, 2w"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass
class PruneResult:
    deleted: list[Path] = field(default_factory=list)
    kept: int = 0
    bytes_freed: int = 0


def prune(
    directory: str | Path,
    retention: timedelta,
    *,
    now: float | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Delete closed prediction-log files last written more than ``retention`` ago."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: not a prediction-log directory (not found)")
    cutoff = (time.time() if now is None else now) - retention.total_seconds()
    result = PruneResult()
    with os.scandir(directory) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if not LOG_FILE.match(entry.name):
                continue
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                continue  # a link or a folder with a log file's name: not ours to delete
            if info.st_mtime >= cutoff:
                result.kept += 1
                continue
            if not dry_run:
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue  # another pruner was first
            result.deleted.append(Path(entry.path))
            result.bytes_freed += info.st_size
    return result
