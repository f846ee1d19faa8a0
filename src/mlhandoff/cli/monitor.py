"""``mlhandoff monitor``: the bundle's monitoring rules on a prediction log, window by window."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlhandoff.cli._app import EXIT_FAILED, app, console, fail, run
from mlhandoff.errors import InputError
from mlhandoff.monitor.report import MonitorReport, WindowReport

_STYLES = {"ok": "green", "pending": "yellow", "firing": "bold red", "not judged": "dim"}


@app.command()
def monitor(
    bundle: Annotated[Path, typer.Argument(help="The bundle whose rules and reference to use.")],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="A prediction-log directory (mlhandoff serve --log-dir) or a .parquet/.csv file.",
        ),
    ],
    window: Annotated[
        str, typer.Option(help="Evaluation step, aligned to UTC: 15m, 1h, 1d.")
    ] = "1h",
    labels: Annotated[
        Path | None,
        typer.Option(help="Labels that arrived late (Parquet/CSV), for realised performance."),
    ] = None,
    join_key: Annotated[
        str | None, typer.Option(help="Column joining --labels to the rows, e.g. transaction_id.")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option(help="Label column in --labels (default: the contract's label).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="First instant, ISO 8601 (UTC unless it has an offset).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="End instant (excluded), ISO 8601.")] = None,
    time_column: Annotated[
        str | None,
        typer.Option(
            help="Timestamp column to window by (default: logged_at, else the contract's)."
        ),
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="Zone of timestamps written without an offset, e.g. UTC.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option(help="Also write an HTML report with histograms here.")
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows read at a time (bounds memory).")
    ] = 262_144,
    record: Annotated[
        bool,
        typer.Option(
            help="Record what the run computed beside the bundle (<bundle>.monitor.json)."
        ),
    ] = True,
) -> None:
    """Judge the bundle's monitoring rules on logged predictions, window by window.

    Per window: each rule's value over its own window against its bound, and its alert's state
    (pending while the breach lasts, firing once it lasted the rule's for:). Exit 1 when an
    alert fires, 2 on bad input. Unreadable files are skipped and listed. What the run
    computed is recorded beside the bundle (<bundle>.monitor.json), where `mlhandoff verify`
    reads it into the ML Test Score.
    Example: [bold]mlhandoff monitor dist/my-model-1.0.0 --data predictions/ --window 1h[/]
    """
    from mlhandoff.bundle.bundle import open_bundle
    from mlhandoff.monitor.html import render_html
    from mlhandoff.monitor.record import write_record
    from mlhandoff.monitor.run import monitor as run_monitor

    start, end = _instant(since, "--since", as_json), _instant(until, "--until", as_json)
    opened = run(lambda: open_bundle(bundle), as_json=as_json)
    report = run(
        lambda: run_monitor(
            opened,
            data,
            step=window,
            labels=labels,
            join_key=join_key,
            label_column=label_column,
            since=start,
            until=end,
            time_column=time_column,
            timezone=timezone,
            chunk_rows=chunk_rows,
        ),
        as_json=as_json,
    )
    if html is not None:
        run(lambda: html.write_text(render_html(report), encoding="utf-8"), as_json=as_json)
    recorded = run(lambda: write_record(opened, report), as_json=as_json) if record else None
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        _print(report, html)
        if recorded is not None:
            console.print(f"[dim]recorded for verify: {recorded}[/]", highlight=False)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _instant(text: str | None, option: str, as_json: bool) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(
            InputError(f"{option}: '{text}' is not an ISO 8601 time, e.g. 2026-04-21T06:00Z"),
            as_json,
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _print(report: MonitorReport, html: Path | None) -> None:
    console.print(
        f"[bold]{report.bundle}[/] on {report.data}: {report.layout}, {report.files} file(s), "
        f"{report.rows:,} rows, windows of {report.step} (UTC)\nreference: {report.reference}",
        highlight=False,
    )
    for w in report.windows:
        console.print(_window_table(w))
    for s in report.skipped:
        console.print(f"[yellow]skipped[/] {s['path']}: {s['reason']}", highlight=False)
    for note in report.notes:
        console.print(f"[dim]note:[/] {note}", highlight=False)
    if report.labels:
        console.print(
            "labels: "
            + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in report.labels.items()),
            highlight=False,
        )
    if html is not None:
        console.print(f"HTML report: {html}", highlight=False)
    if report.ok:
        console.print("[bold green]no alert fired[/]")
        return
    table = Table(title="Alerts that fired", title_justify="left", title_style="bold red")
    for column in ("alert", "severity", "rule", "value", "firing since"):
        table.add_column(column)
    for f in report.fired:
        table.add_row(
            f.alert, f.severity, f.rule, _value(f.value), f.since.strftime("%Y-%m-%d %H:%M UTC")
        )
    console.print(table)


def _window_table(w: WindowReport) -> Table:
    title = f"{w.start:%Y-%m-%d %H:%M} – {w.end:%H:%M} UTC · {w.rows:,} rows"
    table = Table(title=title, title_justify="left")
    for column in ("rule", "value", "bound", "state", "alert", "note"):
        table.add_column(column, overflow="fold" if column == "note" else "ellipsis")
    for r in w.rules:
        style = _STYLES.get(r.state, "")
        table.add_row(r.rule, _value(r.value), r.bound, f"[{style}]{r.state}[/]", r.alert, r.note)
    for name, count in w.violations.items():
        table.add_row(f"contract: {name}", f"{count:,}", "", "", "", "rows breaking it")
    perf = w.performance
    if perf:
        est = ", ".join(f"{k} {_value(v)}" for k, v in perf["estimated"].items())
        real = ", ".join(f"{k} {_value(v)}" for k, v in perf["realised"].items())
        note = f"estimated {est}" + (
            f"; realised ({perf['labelled']:,} labels) {real}" if perf["labelled"] else ""
        )
        table.add_row("performance (this window)", "", "", "", "", note)
    return table


def _value(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"
