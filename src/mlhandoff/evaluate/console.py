"""Rich tables of an evaluation and of a version diff (the CLI prints these)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from mlhandoff.evaluate.diff import DiffReport
from mlhandoff.evaluate.report import AcceptanceReport, ResultRow

_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"


def _interval(row: ResultRow) -> str:
    return "" if row.low is None or row.high is None else f"[{_num(row.low)}, {_num(row.high)}]"


def _baseline(row: ResultRow) -> str:
    b = row.baseline
    if b is None:
        return ""
    delta = "" if b.delta is None else f" (Δ {b.delta:+.4g}"
    if b.delta is not None and b.delta_low is not None and b.delta_high is not None:
        delta += f" [{b.delta_low:+.4g}, {b.delta_high:+.4g}]"
    return f"{_num(b.value)}{delta})" if delta else _num(b.value)


def verdict_table(report: AcceptanceReport, title: str) -> Table:
    pct = f"{report.confidence:.0%}"
    table = Table(title=title, title_justify="left")
    for col in ("", "metric", "value", f"{pct} interval", "required", "baseline", "verdict"):
        table.add_column(col)
    table.add_column("why", overflow="fold")
    for row in report.rows:
        kind = {"criterion": "primary" if row.primary else "secondary"}.get(row.kind, row.kind)
        table.add_row(
            kind,
            row.label,
            _num(row.value),
            _interval(row),
            row.bound,
            _baseline(row),
            f"[{_STYLE[row.verdict]}]{row.verdict}[/]",
            row.reason if row.verdict != "pass" else "",  # a pass needs no explanation
        )
    return table


def report_renderable(report: AcceptanceReport, title: str) -> Group:
    lines: list[Table | Text] = [verdict_table(report, title)]
    boot = (
        f"{report.resamples} paired bootstrap resamples (seed {report.seed}) of {report.units} "
        + ("queries" if report.units != report.n else "rows")
        if report.resamples
        else "no bootstrap (resamples: 0): point estimates only"
    )
    lines.append(Text(f"data: {report.data}, {report.n} rows; {boot}", style="dim"))
    if report.latency:
        latency, m = report.latency, report.latency["machine"]
        forms = [("compiled" if latency.get("form") == "compiled" else "", latency)]
        if "original" in latency:
            forms.append(("model itself", latency["original"]))
        for form, timing in forms:
            s, b = timing["single"], timing["batch"]
            lines.append(
                Text(
                    f"latency{f' ({form})' if form else ''}, 1 row: p50 {s['p50_ms']:.2f} ms, "
                    f"p95 {s['p95_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms; batch of {b['rows']}: "
                    f"p50 {b['p50_ms']:.1f} ms ({b['rows_per_s']:.0f} rows/s) "
                    f"on {m['processor']}, {m['cpus']} CPUs, {m['platform']}",
                    style="dim",
                )
            )
    failed = report.failed()
    summary = report.summary()
    if failed:
        lines.append(Text(f"FAIL: {summary}", style="bold red"))
    else:
        style = "yellow" if report.inconclusive() else "bold green"
        lines.append(Text(f"OK: {summary}", style=style))
    return Group(*lines)


def diff_renderable(diff: DiffReport) -> Group:
    parts: list[Table | Text] = [
        verdict_table(
            diff.evaluation, f"{diff.new} vs {diff.old} (baseline) on {diff.evaluation.data}"
        )
    ]
    if diff.latency:
        t = Table(title="latency, 1 row (ms, this machine)", title_justify="left")
        for col in ("", diff.old, diff.new, "ratio"):
            t.add_column(col)
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            old, new = diff.latency["old"]["single"][q], diff.latency["new"]["single"][q]
            t.add_row(q.replace("_ms", ""), f"{old:.2f}", f"{new:.2f}", f"{new / old:.2f}x")
        parts.append(t)
    if diff.contract:
        t = Table(title="data contract changes", title_justify="left")
        for col in ("field", "change", "breaking", "detail"):
            t.add_column(col)
        for c in diff.contract:
            t.add_row(
                c["field"], c["kind"], "[bold red]yes[/]" if c["breaking"] else "no", c["detail"]
            )
        parts.append(t)
    else:
        parts.append(Text("data contract: unchanged"))
    style = "bold green" if diff.go else "bold red"
    parts.append(Text(f"decision: {diff.decision.upper()}", style=style))
    parts += [Text(f"  - {r}") for r in diff.reasons]
    return Group(*parts)
