"""The core commands: init, pack, verify, spec-schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.table import Table

from mlhandoff.checks import CheckResult, VerifyReport
from mlhandoff.cli._app import EXIT_FAILED, app, byte_progress, console, run
from mlhandoff.flavors.base import Task


@app.command()
def init(
    model: Annotated[
        Path, typer.Option(help="Trained model file (.skops, .joblib, .txt, .json, .ubj, .onnx).")
    ],
    sample: Annotated[
        Path,
        typer.Option(help="Sample data (.parquet, .csv, .json, .jsonl) with the model's inputs."),
    ],
    label: Annotated[
        str | None, typer.Option(help="Label column in the sample (excluded from inputs).")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            help="binary_classification, multiclass_classification, regression or ranking."
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Handoff name (slug); defaults to the model file's stem.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the spec.")] = Path(
        "handoff.yaml"
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing spec.")] = False,
    eval_data: Annotated[
        Path | None,
        typer.Option(
            "--eval",
            help="Held-out labelled data: ranges and domains cover it too, and it becomes acceptance.data.",
        ),
    ] = None,
    code: Annotated[
        Path | None, typer.Option(help="Training code (file or folder): training.code_path.")
    ] = None,
    command: Annotated[
        str | None, typer.Option(help="The exact command that trains the model: training.command.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="The random seed used: training.seed.")] = None,
) -> None:
    """Scaffold handoff.yaml: infer the data contract from a sample; mark human-only fields TODO.

    Example: [bold]mlhandoff init --model model.skops --sample train.parquet --eval test.parquet
    --label is_fraud --code train.py --command "python train.py" --seed 42[/]
    """
    from mlhandoff.errors import InputError
    from mlhandoff.scaffold import scaffold

    def action() -> str:
        if out.exists() and not force:
            raise InputError(f"{out} already exists; pass --force to overwrite it")
        if task is not None and task not in (
            "binary_classification",
            "multiclass_classification",
            "regression",
            "ranking",
        ):
            raise InputError(
                f"--task '{task}' is not a task; use binary_classification, multiclass_classification, regression or ranking"
            )
        chosen = cast(Task | None, task)
        return scaffold(
            model_path=model,
            sample=sample,
            spec_path=out,
            label=label,
            task=chosen,
            name=name,
            eval_data=eval_data,
            code=code,
            command=command,
            seed=seed,
        )

    text = run(action)
    out.write_text(text, encoding="utf-8")
    todos = text.count("TODO")
    console.print(
        f"wrote [bold]{out}[/] with the data contract inferred from {sample}; {todos} TODOs to fill in"
    )
    if "#  - " in text:
        console.print(
            "[yellow]the model needs types that are not trusted by default: review them under security.trusted_types[/]"
        )
    console.print(f"next: edit {out}, then [bold]mlhandoff pack {out} --out dist/[/]")


@app.command()
def pack(
    spec: Annotated[Path, typer.Argument(help="The handoff spec.")] = Path("handoff.yaml"),
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory the bundle is written into.")
    ] = Path("dist"),
    sample: Annotated[
        Path | None, typer.Option(help="Sample data for the golden set (overrides golden.sample).")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace an existing bundle of the same name and version.")
    ] = False,
    allow_outside: Annotated[
        bool,
        typer.Option(
            "--allow-outside",
            help="Take model, code and data files from outside the spec's directory (refused by default).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    lock_hashes: Annotated[
        bool,
        typer.Option(
            "--lock-hashes",
            help="Record artifact hashes in env/requirements.txt (pip download from the index).",
        ),
    ] = False,
    wheels: Annotated[
        Path | None,
        typer.Option(help="Take the artifacts to hash from this folder only (offline)."),
    ] = None,
) -> None:
    """Build an immutable, hashed bundle: model, golden set, environment lock, rendered docs.

    Only regular files inside the spec's directory are taken (links, devices and paths outside
    it are refused unless --allow-outside); code folders are limited to 100 MiB.
    """
    from mlhandoff.pack import pack as pack_bundle

    with byte_progress(not as_json, "packing") as (on_bytes, on_stage):
        result = run(
            lambda: pack_bundle(
                spec=spec,
                sample=sample,
                out=out,
                force=force,
                allow_outside=allow_outside,
                on_stage=on_stage,
                on_bytes=on_bytes,
                lock_hashes=lock_hashes,
                wheels=wheels,
            ),
            as_json=as_json,
        )
    if as_json:
        console.print_json(
            data={
                "bundle": str(result.path),
                "bundle_digest": result.bundle_digest,
                "golden_rows": result.golden_rows,
                "todos": len(result.todos),
                "failing_checklist": [r.id for r in result.failing],
                "notices": list(result.notices),
            }
        )
        return
    console.print(f"packed [bold]{result.path}[/] ({result.golden_rows} golden rows)")
    if lock_hashes or wheels is not None:
        lock = (result.path / "env" / "requirements.txt").read_text(encoding="utf-8")
        console.print(
            "env/requirements.txt: artifact hashes recorded (pip --require-hashes)"
            if "--hash=sha256:" in lock
            else "[yellow]env/requirements.txt: no artifact hashes; its header says why[/]"
        )
    console.print(f"bundle digest {result.bundle_digest}")
    for notice in result.notices:
        console.print(f"note: {notice}", markup=False, highlight=False)
    console.print(f"handoff README: {result.path / 'docs' / 'README.md'}")
    if result.todos or result.failing:
        console.print(
            f"[yellow]{len(result.todos)} TODO(s) left in {spec}; verify will fail "
            f"{len(result.failing)} checklist line(s)[/]: "
            + ", ".join(r.title for r in result.failing)
        )
        console.print(f"see them with: [bold]mlhandoff check {spec}[/]")
    console.print(f"next: [bold]mlhandoff verify {result.path}[/]")


@app.command()
def check(
    spec: Annotated[Path, typer.Argument(help="The handoff spec.")] = Path("handoff.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """The handoff checklist against a spec before packing: every TODO with its line, and the
    status each checklist line would have. Exits 1 while anything is left to do.

    Example: [bold]mlhandoff check handoff.yaml[/]
    """
    from mlhandoff.pack.check import check_spec

    result = run(lambda: check_spec(spec), as_json=as_json)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        for todo in result.todos:
            console.print(f"{spec}:{todo.line}: [bold]{todo.path}[/]: {todo.text}", highlight=False)
        table = Table(title=f"Handoff checklist — {spec} (before pack)", title_justify="left")
        table.add_column("check")
        table.add_column("status")
        table.add_column("detail", overflow="fold")
        for r in result.checklist:
            table.add_row(r.title, f"[{_STYLE[r.status]}]{r.status}[/]", r.detail)
        console.print(table)
        failing = sum(r.failed for r in result.checklist)
        console.print(
            f"{len(result.todos)} TODO(s), {failing} checklist line(s) failing"
            if not result.ok
            else "[bold green]nothing left to fill in[/]"
        )
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def verify(
    bundle: Annotated[Path, typer.Argument(help="The bundle directory.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the checklist as JSON (for CI).")
    ] = False,
    public_key: Annotated[
        list[Path] | None,
        typer.Option("--public-key", help="Public key the bundle's signature must verify with."),
    ] = None,
    keyring: Annotated[
        Path | None,
        typer.Option(help="Directory of public keys (*.pub) trusted to sign off."),
    ] = None,
) -> None:
    """Check a bundle: integrity of every file, signature, golden set vs data contract, golden
    replay, sign-offs, checklist.

    Exits 1 when any line fails or is missing.
    """
    from mlhandoff.verify import verify as run_verify

    with byte_progress(not as_json, "hashing") as (on_bytes, _):
        report = run(
            lambda: run_verify(
                bundle, progress=on_bytes, public_keys=public_key or (), keyring=keyring
            ),
            as_json=as_json,
        )
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "missing": "yellow",
    "warn": "yellow",
    "skipped": "dim",
}


def _print_report(report: VerifyReport) -> None:
    table = Table(
        title=f"Handoff checklist — {report.bundle}", title_justify="left", show_lines=False
    )
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for r in report.results:
        table.add_row(r.title, f"[{_STYLE[r.status]}]{r.status}[/]", r.detail)
    console.print(table)
    if report.ml_test_score:
        _print_score(report.ml_test_score)
    if report.bundle_digest:
        console.print(f"bundle digest {report.bundle_digest}")
    console.print(_summary(report.results))


def _print_score(score: dict[str, Any]) -> None:
    """Every test of the ML Test Score with its points and the check behind them."""
    table = Table(title="ML Test Score (Breck et al. 2017)", title_justify="left")
    table.add_column("test")
    table.add_column("points", justify="right")
    table.add_column("evidence", overflow="fold")
    for row in score["tests"]:
        style = "green" if row["points"] == 1 else "yellow" if row["points"] else "dim"
        table.add_row(
            f"{row['id']} {row['title']}", f"[{style}]{row['points']:g}[/]", row["evidence"]
        )
    console.print(table)
    sections = ", ".join(f"{name} {value:g}" for name, value in score["sections"].items())
    console.print(f"ML Test Score: [bold]{score['final']:g}[/] (the lowest of {sections})")


def _summary(results: list[CheckResult]) -> str:
    """A warning is not a pass: say how many of each there are."""
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "warn", "skipped")}
    failed = sum(r.failed for r in results)
    tail = ", ".join(
        f"{n} {label}"
        for n, label in (
            (counts["pass"], "passed"),
            (counts["warn"], "warning" + ("s" if counts["warn"] != 1 else "")),
            (counts["skipped"], "skipped"),
        )
        if n
    )
    if failed:
        return f"[bold red]{failed} of {len(results)} checks failed or missing[/] ({tail})"
    style = "yellow" if counts["warn"] else "green"
    return f"[bold {style}]no check failed:[/] {tail}"


@app.command("spec-schema")
def spec_schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to a file instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of handoff.yaml (for editor completion and CI linting)."""
    from mlhandoff.spec.loader import spec_json_schema

    text = json.dumps(spec_json_schema(), indent=2) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        sys.stdout.write(text)
