"""The data-contract commands: validate (stream a file through the contract), contract diff."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlhandoff.cli._app import (
    EXIT_FAILED,
    EngineOption,
    SchedulerOption,
    app,
    console,
    engine_progress,
    engine_session,
    run,
)
from mlhandoff.contract.report import ValidationReport
from mlhandoff.errors import Violation
from mlhandoff.spec.models import HandoffSpec

contract_app = typer.Typer(help="Work with data contracts: compare versions.", no_args_is_help=True)
app.add_typer(contract_app, name="contract")


def load_contract_source(path: Path) -> HandoffSpec:
    """The spec of a handoff.yaml, or of a bundle directory after its integrity check."""
    from mlhandoff.bundle import open_bundle
    from mlhandoff.errors import InputError
    from mlhandoff.spec.loader import load_spec

    if path.is_dir():
        return open_bundle(path).spec
    if not path.exists():
        raise InputError(f"{path}: not found; pass a handoff.yaml or a bundle directory")
    return load_spec(path)


@app.command()
def validate(
    data: Annotated[
        Path,
        typer.Argument(help="Data file: .parquet (or a directory of them), .csv, .json, .jsonl."),
    ],
    contract: Annotated[
        Path, typer.Option("--contract", "-c", help="A handoff.yaml or a bundle directory.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    label: Annotated[
        str | None,
        typer.Option(help="Label column in DATA: also check for features that leak it."),
    ] = None,
    max_examples: Annotated[
        int, typer.Option(min=0, help="Offending rows kept per field and rule.")
    ] = 5,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows validated at a time (bounds memory).")
    ] = 262_144,
    allow_extra: Annotated[
        bool, typer.Option(help="Accept columns the contract does not name.")
    ] = False,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Validate a data file against a data contract, streaming it in chunks.

    Prints each broken rule per field with its count and first offending rows; exits 1 on any
    violation, 2 on bad input. Example: [bold]mlhandoff validate batch.parquet -c handoff.yaml[/]
    """
    from mlhandoff.contract.validate import CompiledContract

    def action() -> tuple[HandoffSpec, ValidationReport]:
        spec = load_contract_source(contract)
        compiled = CompiledContract(spec.data_contract, max_examples=max_examples)
        with engine_session(engine, scheduler) as runner, engine_progress(not as_json) as bar:
            return spec, runner.validate(
                data,
                compiled,
                chunk_rows=chunk_rows,
                allow_extra=allow_extra,
                label=label,
                progress=bar,
            )

    spec, report = run(action, as_json=as_json)
    if as_json:
        payload = {
            "data": str(data),
            "contract": str(contract),
            "row_numbering": "0-based data rows (a CSV header is not counted)",
            **report.to_dict(),
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        _print_validation(report, data, len(spec.data_contract.fields))
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _print_validation(report: ValidationReport, data: Path, fields: int) -> None:
    if report.violations:
        console.print(_violation_table(report.violations, f"Violations — {data}", "bold red"))
        console.print(
            "[dim]rows are numbered from 0 over the data rows (a CSV header line is not "
            "counted: CSV row n is file line n + 2)[/]"
        )
    if report.notices:
        console.print(_violation_table(report.notices, "Notices (not failures)", "yellow"))
    for finding in report.leakage:
        console.print(
            f"[yellow]leakage warning[/] ({finding.check}, {finding.field}, score "
            f"{finding.score}): {finding.detail}",
            highlight=False,
        )
    if report.ok:
        console.print(
            f"[bold green]all {report.rows:,} rows satisfy the contract[/] ({fields} fields)"
        )
    else:
        share = f" ({report.failing_rows / report.rows:.2%})" if report.rows else ""
        console.print(
            f"[bold red]{len(report.violations)} violation(s)[/]; {report.failing_rows:,} of "
            f"{report.rows:,} rows{share} break the contract"
        )


def _violation_table(violations: list[Violation], title: str, style: str) -> Table:
    table = Table(title=title, title_justify="left", title_style=style)
    table.add_column("field")
    table.add_column("rule")
    table.add_column("count", justify="right")
    table.add_column("first rows (0-based)")
    table.add_column("detail", overflow="fold")
    for v in violations:
        rows = ", ".join(str(r) for r in v.rows)
        table.add_row(v.field, v.rule, f"{v.count:,}", rows, v.message)
    return table


@contract_app.command("diff")
def diff(
    old: Annotated[Path, typer.Argument(help="The old handoff.yaml or bundle.")],
    new: Annotated[Path, typer.Argument(help="The new handoff.yaml or bundle.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the changes as JSON.")] = False,
) -> None:
    """Classify each data-contract change as breaking or compatible; exit 1 on breaking ones.

    Breaking: data valid under OLD may fail under NEW (removed or new required field, type
    change, narrowed range or domain, nullable -> non-null, new pattern, unit change).
    """
    from mlhandoff.contract.diff import diff_contracts

    result = run(
        lambda: diff_contracts(
            load_contract_source(old).data_contract, load_contract_source(new).data_contract
        ),
        as_json=as_json,
    )
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    elif not result.changes:
        console.print("no changes to the data contract")
    else:
        table = Table(title=f"Data contract: {old} -> {new}", title_justify="left")
        for column in ("field", "change", "breaking", "detail"):
            table.add_column(column, overflow="fold" if column == "detail" else "ellipsis")
        for c in result.changes:
            flag = "[bold red]breaking[/]" if c.breaking else "[green]compatible[/]"
            table.add_row(c.field, c.kind, flag, c.detail)
        console.print(table)
        console.print(
            f"{len(result.breaking)} breaking, {len(result.changes) - len(result.breaking)} "
            "compatible change(s)"
        )
    if result.breaking:
        raise typer.Exit(EXIT_FAILED)
