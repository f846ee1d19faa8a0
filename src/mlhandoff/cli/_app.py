"""The typer app and what every command shares: consoles, exit codes, error mapping, progress."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from mlhandoff._version import __version__
from mlhandoff.errors import HandoffError, InputError, StorageError

if TYPE_CHECKING:
    from mlhandoff.engines import Engine

app = typer.Typer(
    name="mlhandoff",
    help=(
        "Turn an ML prototype into a verified production handoff.\n\n"
        "Typical flow: [bold]init[/] (scaffold handoff.yaml from a model and a sample) → fill in the "
        "TODOs → [bold]pack[/] (build an immutable, hashed bundle with rendered docs) → "
        "[bold]verify[/] (integrity, data contract, golden replay, handoff checklist)."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _version(value: bool) -> None:
    if value:
        console.print(f"mlhandoff {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Turn an ML prototype into a verified production handoff."""


def fail(error: HandoffError, as_json: bool = False) -> NoReturn:
    """Report a bad argument the way library errors are reported, and exit 2.

    With ``--json`` the error is JSON on stdout too (``{"ok": false, "error": {code, message}}``),
    so a CI job that parses the output gets an answer either way.
    """
    if as_json:
        sys.stdout.write(
            json.dumps({"ok": False, "error": {"code": error.code, "message": str(error)}}) + "\n"
        )
    else:
        err.print(
            f"[bold red]error[/] [dim]({error.code})[/]: {error}", highlight=False, soft_wrap=True
        )
    raise typer.Exit(EXIT_BAD_INPUT)


def secret(option: str, variable: str | None) -> str | None:
    """The value of the environment variable an option names (secrets never go on the
    command line, where `ps` shows them); a clear error when it is not set."""
    if not variable:
        return None
    value = os.environ.get(variable)
    if not value:
        fail(InputError(f"{option} {variable}: that environment variable is not set"))
    return value


def run(action: Callable[[], T], *, as_json: bool = False) -> T:
    """Run library code; our errors become one red line and exit code 2, never a traceback.

    So do a full disk, a read-only folder or input nested too deeply to parse: they are the
    user's to fix, not bugs in mlhandoff.
    """
    try:
        return action()
    except HandoffError as exc:
        fail(exc, as_json)
    except OSError as exc:
        error = StorageError.from_os_error(exc)
        if error is None:
            raise
        fail(error, as_json)
    except RecursionError:
        fail(
            InputError("the input is nested too deeply to read (a hostile or broken file?)"),
            as_json,
        )


@contextmanager
def byte_progress(
    enabled: bool, label: str
) -> Iterator[tuple[Callable[[int], None] | None, Callable[[str], None]]]:
    """A progress bar on stderr for long hashing/copying; silent when output is not a terminal."""
    if not enabled or not err.is_terminal:
        yield None, lambda _: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield (
            (lambda n: progress.advance(task, n)),
            (lambda s: progress.update(task, description=s)),
        )


EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        help="Where to run: local (this process, streamed) or dask (a Dask cluster; "
        "same answers). Dask needs: pip install 'mlhandoff\\[dask]'.",
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        help="With --engine dask: the scheduler's address, e.g. tcp://host:8786 "
        "(default: a LocalCluster on this machine, a worker per core).",
    ),
]


@contextmanager
def engine_session(name: str, scheduler: str | None) -> Iterator[Engine]:
    """The engine asked for, closed (a LocalCluster it started stopped) when done."""
    from mlhandoff.engines import open_engine

    engine = open_engine(name, scheduler=scheduler)
    try:
        yield engine
    finally:
        engine.close()


class _Bar:
    """An engine's progress as a rich bar on stderr."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = progress.add_task("working", total=None)

    def start(self, what: str, total: int | None) -> None:
        self._progress.update(self._task, description=what, total=total)

    def advance(self, done: int) -> None:
        self._progress.advance(self._task, done)


@contextmanager
def engine_progress(enabled: bool) -> Iterator[_Bar | None]:
    """A progress bar on stderr for an engine's work; None when stderr is not a terminal or
    the output is JSON."""
    if not enabled or not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        yield _Bar(progress)
