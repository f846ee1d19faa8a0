"""Acceptance commands: evaluate (verdicts), repro (clean-venv dry run), diff (upgrade go/no-go)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from mlhandoff.cli._app import (
    EXIT_FAILED,
    EngineOption,
    SchedulerOption,
    app,
    console,
    engine_progress,
    engine_session,
    err,
    run,
)


@app.command()
def evaluate(
    bundle: Annotated[Path, typer.Argument(help="The bundle directory.")],
    data: Annotated[
        Path | None,
        typer.Option(
            help="Labelled data (.parquet, .csv, .json); default: the packed eval sample."
        ),
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="Another bundle to compare with, on the same rows (paired).")
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="Evaluate this model file instead of the bundled one.")
    ] = None,
    resamples: Annotated[
        int | None, typer.Option(min=0, help="Bootstrap resamples (default: the spec's).")
    ] = None,
    latency: Annotated[
        bool, typer.Option(help="Measure prediction latency against api.latency_budget.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    junit: Annotated[
        Path | None, typer.Option(help="Also write JUnit XML here (one test case per row).")
    ] = None,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Judge every acceptance criterion and guardrail, with bootstrap intervals and verdicts.

    Verdicts: pass (the whole interval meets the bound), fail (none of it does), inconclusive
    (it straddles the bound, or a slice is too small). Exits 1 on a failed primary criterion,
    guardrail or latency budget.
    """
    from mlhandoff.evaluate.console import report_renderable
    from mlhandoff.evaluate.junit import junit_xml
    from mlhandoff.evaluate.report import AcceptanceReport

    def action() -> AcceptanceReport:
        with engine_session(engine, scheduler) as runner, engine_progress(not as_json) as bar:
            return runner.evaluate(
                bundle,
                data,
                progress=bar,
                baseline=baseline,
                model=model,
                latency=latency,
                resamples=resamples,
            )

    report = run(action, as_json=as_json)
    if junit:
        junit.write_text(junit_xml(report), encoding="utf-8")
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        console.print(report_renderable(report, f"Acceptance — {bundle}"))
        if junit:
            console.print(f"JUnit XML: {junit}")
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def repro(
    bundle: Annotated[Path, typer.Argument(help="The bundle directory.")],
    retrain: Annotated[
        bool, typer.Option(help="Also run the recorded training command and compare.")
    ] = False,
    data_root: Annotated[
        Path | None,
        typer.Option(help="Where training.data paths are found (for --retrain; default: cwd)."),
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the temporary venv and work files.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Dry-run the handoff: fresh venv from env/requirements.txt, re-measure the metrics.

    Lists every friction point and the wall time; records the result next to the bundle
    (<bundle>.repro.json), where `mlhandoff verify` reads it. Exits 1 on any friction.
    """
    from mlhandoff.bundle.layout import repro_record as record_path
    from mlhandoff.verify.repro import repro as run_repro

    def step(name: str) -> None:
        if not as_json:
            err.print(f"[dim]· {name}[/]", highlight=False)

    result = run(
        lambda: run_repro(bundle, retrain=retrain, data_root=data_root, keep=keep, on_step=step),
        as_json=as_json,
    )
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        from rich.table import Table

        table = Table(title=f"Repro dry run — {bundle}", title_justify="left")
        for col in ("step", "ok", "seconds", "detail"):
            table.add_column(col, overflow="fold")
        for s in result.steps:
            table.add_row(
                s.name, "[green]yes[/]" if s.ok else "[bold red]no[/]", f"{s.seconds:.1f}", s.detail
            )
        console.print(table)
        for m in result.metrics:
            mark = "[green]=[/]" if m["ok"] else "[bold red]≠[/]"
            console.print(
                f"  {m['metric']}: recorded {m['recorded']} {mark} reproduced {m['reproduced']}"
            )
        if result.retrain:
            r = result.retrain
            console.print(
                f"retrain: model {r.get('model')}, same sha256 as bundled: {r.get('same_hash')}, "
                f"metrics match: {r.get('metrics_match')}"
            )
        for f in result.frictions:
            console.print(f"[yellow]friction:[/] {f}")
        verdict = "[bold green]reproduced[/]" if result.ok else "[bold red]not reproduced[/]"
        console.print(
            f"{verdict} in {result.wall_s:.1f}s; record: {record_path(Path(result.bundle))}"
        )
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def diff(
    old: Annotated[Path, typer.Argument(help="The current bundle.")],
    new: Annotated[Path, typer.Argument(help="The candidate bundle.")],
    data: Annotated[
        Path | None,
        typer.Option(help="Labelled data both score (default: NEW's packed eval sample)."),
    ] = None,
    resamples: Annotated[int | None, typer.Option(min=0, help="Bootstrap resamples.")] = None,
    latency: Annotated[bool, typer.Option(help="Measure and compare latency.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False,
) -> None:
    """Compare two versions: paired metric deltas, latency, data-contract compatibility, go/no-go.

    The rule is NEW's acceptance.upgrade; exits 1 on no-go.
    """
    from mlhandoff.evaluate.console import diff_renderable
    from mlhandoff.evaluate.diff import diff_bundles

    result = run(
        lambda: diff_bundles(old, new, data, latency=latency, resamples=resamples), as_json=as_json
    )
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        console.print(diff_renderable(result))
    if not result.go:
        raise typer.Exit(EXIT_FAILED)
