"""What a run of ``mlhandoff monitor`` computed, recorded beside the bundle
(``<bundle>.monitor.json``, as ``mlhandoff repro`` records its dry run) for the bundle digest,
so that ``verify``'s ML Test Score can count a monitoring test only when a run did it.

The record holds only what the run computed: the windows and rules it judged, the alerts that
fired, the performance it estimated (and realised, when labels were joined) next to the
pack-time acceptance value of the same metric, the floating-point outputs it read and how many were NaN or infinite, whether it
validated the data contract itself, and how old the evaluation data was at the run's newest row.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlhandoff.bundle import layout
from mlhandoff.bundle.bundle import Bundle
from mlhandoff.monitor.report import MonitorReport

_JUDGED = frozenset({"ok", "pending", "firing"})
_BOUND = re.compile(r"^(>=|<=|>|<)\s*(-?[0-9.eE+-]+)$")


def build_record(bundle: Bundle, report: MonitorReport) -> dict[str, Any]:
    """The record of ``report``, a run on ``bundle``."""
    judged = {r.rule for w in report.windows for r in w.rules if r.state in _JUDGED}
    every = {r.rule for w in report.windows for r in w.rules}
    newest = report.windows[-1].end if report.windows else None
    return {
        "bundle_digest": bundle.digest,
        "ran_at": _iso(datetime.now(UTC)),
        "data": report.data,
        "layout": report.layout,
        "rows": report.rows,
        "windows": len(report.windows),
        "step": report.step,
        "first": _iso(report.windows[0].start) if report.windows else None,
        "last": _iso(newest) if newest else None,
        "rules_judged": sorted(judged),
        "rules_not_judged": sorted(every - judged),
        "fired": sorted({f.alert for f in report.fired}),
        # Plain tables are validated row by row here; a prediction log holds only the rows the
        # server accepted after validating them.
        "contract_validated": report.layout == "table",
        "contract_violations": sum(sum(w.violations.values()) for w in report.windows),
        "performance": {**report.performance, "offline": _offline(bundle, report.performance)}
        if report.performance
        else {},
        "output_values": report.output_values,
        "reference_age_days": _age_days(bundle, newest),
    }


def write_record(bundle: Bundle, report: MonitorReport) -> Path:
    path = layout.monitor_record(bundle.root)
    path.write_text(json.dumps(build_record(bundle, report), indent=2) + "\n", encoding="utf-8")
    return path


def read_record(bundle: Bundle) -> dict[str, Any] | None:
    """The monitor record for this bundle digest, if there is a readable one."""
    try:
        record = json.loads(layout.monitor_record(bundle.root).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or record.get("bundle_digest") != bundle.digest:
        return None
    return record


def _offline(bundle: Bundle, performance: dict[str, Any]) -> dict[str, Any]:
    """Pack-time acceptance criteria on the metrics the run measured, with their bounds."""
    report = bundle.report(layout.ACCEPTANCE_REPORT)
    rows = report.get("rows", []) if isinstance(report, dict) else []
    metrics = set(performance.get("estimated", {}))
    out: dict[str, Any] = {}
    for row in rows:
        if not isinstance(row, dict) or row.get("kind") != "criterion" or row.get("by"):
            continue
        metric, value = row.get("metric"), row.get("value")
        match = _BOUND.match(str(row.get("bound") or ""))
        if (
            isinstance(metric, str)
            and metric in metrics
            and isinstance(value, int | float)
            and match
        ):
            out[metric] = {"value": value, "op": match[1], "threshold": float(match[2])}
    return out


def agrees(offline: dict[str, Any], online: float) -> bool:
    """Whether ``online`` meets the bound the model was accepted with (the same verdict)."""
    op, bound = offline["op"], offline["threshold"]
    return {">=": online >= bound, ">": online > bound, "<=": online <= bound, "<": online < bound}[
        op
    ]


def _age_days(bundle: Bundle, newest: datetime | None) -> float | None:
    """Days from the newest row of the evaluation sample (time split) to the run's newest."""
    split = bundle.spec.data_contract.split
    path = bundle.root / layout.EVAL_SAMPLE
    if newest is None or split is None or split.kind != "time" or not split.column:
        return None
    if not path.exists():
        return None
    try:
        column = pq.read_table(path, columns=[split.column]).column(0)
        latest = pc.max(column).as_py()
    except (OSError, KeyError, ValueError):
        return None
    if not isinstance(latest, datetime):
        return None
    if latest.tzinfo is None:
        latest = latest.replace(tzinfo=UTC)
    return round((newest - latest).total_seconds() / 86_400, 2)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
