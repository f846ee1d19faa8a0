"""Rollout commands: ``rollout plan`` (samples and step durations), ``rollout judge`` (graduate,
continue or roll back, from the prediction log), and the live split of a server serving a
candidate beside a baseline: ``rollout status``, ``rollout set-weight``, ``rollback``.

``rollout judge`` exits with a code a pipeline branches on: 0 graduate, 1 roll back,
4 continue (not enough evidence yet: look again later), 2 bad input, 3 a bug. With ``--apply
URL`` it also sets the server's weight to the verdict's next weight (graduate: the next step's
share, 100 after the last; roll back: 0; continue: unchanged).
"""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mlhandoff.cli._app import app, console, fail, run, secret
from mlhandoff.errors import InputError

rollout_app = typer.Typer(
    help="Take a candidate live: size the canary steps, judge it against the baseline.",
    no_args_is_help=True,
)
app.add_typer(rollout_app, name="rollout")


def _open(bundle: Path):
    from mlhandoff.bundle import open_bundle

    return open_bundle(bundle)


@rollout_app.command("plan")
def plan(
    bundle: Annotated[Path, typer.Argument(help="The candidate bundle.")],
    traffic_rps: Annotated[
        float, typer.Option(help="Requests per second the service gets (both versions together).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Samples per arm for every graduation rule, and the time each step needs at the traffic.

    Warns when a step's duration is too short for the samples its rules need.
    """
    from mlhandoff.rollout import plan_bundle

    result = run(lambda: plan_bundle(_open(bundle), traffic_rps), as_json=as_json)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return
    rules = Table(title=f"Rollout plan — {result.bundle} at {result.traffic_rps:g} req/s")
    for column in (
        "rule",
        "test",
        "baseline",
        "margin",
        "n per arm (one look)",
        "n per arm (judge)",
    ):
        rules.add_column(column)
    for m in result.metrics:
        unit = "" if m.population == 1.0 else f" of {m.population:.2%} of requests"
        rules.add_row(
            f"{m.metric} ({m.goal.replace('_', ' ')})",
            m.test,
            _num(m.baseline),
            _num(m.margin),
            _count(m.n_fixed),
            _count(m.n_sequential) + unit,
        )
    console.print(rules)
    steps = Table(title=f"Steps (alpha {result.alpha:g}, power {result.power:g})")
    for column in (
        "step",
        "share",
        "duration",
        "candidate requests",
        "baseline requests",
        "judge needs",
    ):
        steps.add_column(column)
    for s in result.steps:
        needed = "—" if s.seconds_needed is None else _duration(s.seconds_needed)
        steps.add_row(
            str(s.step),
            f"{s.traffic_percent:g}%",
            s.duration,
            f"{s.candidate_requests:,}",
            f"{s.baseline_requests:,}",
            needed,
        )
    console.print(steps)
    for m in result.metrics:
        for note in m.notes:
            console.print(f"[dim]{m.metric}: {note}[/]", highlight=False)
    for warning in result.warnings:
        console.print(f"[bold yellow]WARNING[/]: {warning}", highlight=False)


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _duration(seconds: float) -> str:
    if math.isinf(seconds):
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


@rollout_app.command("judge")
def judge(
    bundle: Annotated[Path, typer.Argument(help="The candidate bundle.")],
    logs: Annotated[Path, typer.Option(help="The prediction log: a directory of Parquet files.")],
    labels: Annotated[
        Path | None, typer.Option(help="Delayed labels (Parquet, CSV, JSON) for label metrics.")
    ] = None,
    join_key: Annotated[
        str | None, typer.Option(help="The field that joins labels to logged requests.")
    ] = None,
    baseline_version: Annotated[
        str | None,
        typer.Option(help="The baseline's version (default: rollback.previous_version)."),
    ] = None,
    step: Annotated[
        int | None, typer.Option(min=1, help="The step being judged (default: by observed share).")
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
            help="Leave out rows logged before this time (the step's start), UTC unless given.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the judgement as JSON.")] = False,
    apply: Annotated[
        str | None,
        typer.Option(
            help="URL of the server serving the candidate beside the baseline: set its weight "
            "to the verdict's next weight (graduate: the next step's share; roll back: 0)."
        ),
    ] = None,
    token_env: Annotated[
        str | None,
        typer.Option(help="Environment variable holding the server's admin token (--apply)."),
    ] = None,
) -> None:
    """Graduate, continue or roll back: every graduation rule compared between the candidate
    and the baseline in the prediction log, and every rollback trigger.

    Exit codes: 0 graduate, 1 roll back, 4 continue (look again later), 2 bad input (also when
    --apply cannot set the weight).
    """
    from mlhandoff.rollout import judge_rollout

    token = _admin_token(token_env) if apply else None
    when = None if since is None else since if since.tzinfo else since.replace(tzinfo=UTC)
    result = run(
        lambda: judge_rollout(
            _open(bundle),
            logs,
            labels=labels,
            join_key=join_key,
            baseline_version=baseline_version,
            step=step,
            since=when,
        ),
        as_json=as_json,
    )
    applied = None
    if apply and token and result.next_weight is not None:
        weight = result.next_weight
        applied = run(lambda: _change(apply, token, weight=weight), as_json=as_json)
    if as_json:
        data = result.to_dict() | ({"applied": applied} if apply else {})
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        _print_judgement(result)
        if apply:
            console.print(
                f"applied: {_state(applied)}"
                if applied
                else "applied: nothing (continue keeps the weight)",
                highlight=False,
            )
    raise typer.Exit(result.exit_code)


def _admin_token(variable: str | None) -> str:
    if not variable:
        fail(InputError("give the server's admin token with --token-env NAME"))
    return secret("--token-env", variable) or ""  # secret() exits when the variable is unset


def _change(url: str, token: str, **change: Any) -> dict[str, Any]:
    from mlhandoff.serve.admin import change_rollout

    return change_rollout(url, token, **change)


def _state(state: dict[str, Any]) -> str:
    return (
        f"{state['mode']} {state['weight']:g}% to the candidate {state['candidate']} (baseline "
        f"{state['baseline']}); last change by {state['changed_by']} at {state['changed_at']}"
    )


def _show(state: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(state, indent=2) + "\n")
    else:
        console.print(_state(state), highlight=False)


_URL = Annotated[
    str, typer.Argument(help="The server serving the candidate beside the baseline (its base URL).")
]
_TOKEN_ENV = Annotated[
    str | None, typer.Option(help="Environment variable holding the server's admin token.")
]
_JSON = Annotated[bool, typer.Option("--json", help="Print the server's rollout state as JSON.")]


@rollout_app.command("status")
def status(url: _URL, token_env: _TOKEN_ENV = None, as_json: _JSON = False) -> None:
    """The server's split now: mode, weight, versions, the last change (who, when)."""
    token = _admin_token(token_env)
    _show(run(lambda: _change(url, token), as_json=as_json), as_json)


@rollout_app.command("set-weight")
def set_weight(
    url: _URL,
    weight: Annotated[
        float, typer.Argument(min=0.0, max=100.0, help="Percent of requests for the candidate.")
    ],
    mode: Annotated[str | None, typer.Option(help="Switch the mode too: canary or shadow.")] = None,
    token_env: _TOKEN_ENV = None,
    as_json: _JSON = False,
) -> None:
    """Set the candidate's share of traffic (and with --mode, canary or shadow) on a server;
    with --redis every replica follows within a second."""
    token = _admin_token(token_env)
    if mode not in (None, "canary", "shadow"):
        fail(InputError(f"--mode must be canary or shadow, not '{mode}'"), as_json)
    state = run(lambda: _change(url, token, weight=weight, mode=mode), as_json=as_json)
    _show(state, as_json)


@app.command("rollback")
def rollback(url: _URL, token_env: _TOKEN_ENV = None, as_json: _JSON = False) -> None:
    """Roll the candidate back in one call: weight 0, the baseline answers every request."""
    token = _admin_token(token_env)
    _show(run(lambda: _change(url, token, rollback=True), as_json=as_json), as_json)


_VERDICT_STYLE = {"graduate": "bold green", "continue": "bold yellow", "rollback": "bold red"}


def _print_judgement(result) -> None:
    where = (
        f"step {result.step} ({result.traffic_percent:g}%)"
        if result.step is not None
        else "no steps"
    )
    console.print(
        f"Candidate {result.candidate} vs baseline {result.baseline}: {where}, observed "
        f"{result.observed_percent:.1f}% of {sum(result.requests.values()):,} requests over "
        f"{result.elapsed_s / 3600:.1f} h",
        highlight=False,
    )
    table = Table()
    for column in (
        "rule",
        "baseline",
        "candidate",
        "effect",
        "anytime interval",
        "Kayenta",
        "decision",
    ):
        table.add_column(column)
    for r in result.rules:
        name = r.metric + (" (critical)" if r.critical else "")
        if r.effect is None:
            table.add_row(name, "—", "—", "—", "—", r.classification, f"no data: {r.detail}")
            continue
        effect = f"×{r.effect:.3g}" if r.effect_kind == "ratio" else f"{r.effect:+.4g}"
        seq = r.sequence
        table.add_row(
            name,
            f"{r.baseline:.4g}",
            f"{r.candidate:.4g}",
            effect,
            f"[{seq[0]:.4g}, {seq[1]:.4g}]",
            r.classification,
            r.decision,
        )
    console.print(table)
    for t in result.triggers:
        mark = "[bold red]FIRED[/]" if t.fired else "ok"
        console.print(f"trigger {t.name} ({t.rule}): {mark} — {t.detail}", highlight=False)
    if result.score is not None:
        console.print(f"canary score {result.score:.0f}", highlight=False)
    for path in result.skipped_files:
        console.print(f"[yellow]skipped[/] {path}", highlight=False)
    style = _VERDICT_STYLE[result.verdict]
    after = "" if result.next_weight is None else f" (next weight {result.next_weight:g}%)"
    console.print(f"[{style}]{result.verdict.upper()}[/]{after}", highlight=False)
    for reason in result.reasons:
        console.print(f"  - {reason}", highlight=False)
