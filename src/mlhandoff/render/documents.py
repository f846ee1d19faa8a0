"""Rendering the handoff README and model card with jinja2 templates shipped in the package."""

from __future__ import annotations

from typing import Any

import jinja2

from mlhandoff._version import __version__
from mlhandoff.bundle.record import PackRecord
from mlhandoff.checks import CheckResult
from mlhandoff.http_codes import ERROR_CODES
from mlhandoff.spec.models import FieldSpec, HandoffSpec, OutputContract, is_todo

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("mlhandoff.render", "templates"),
    autoescape=False,  # Markdown, not HTML
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def _cell(value: object) -> str:
    """A Markdown table cell: TODO stays visible, pipes are escaped."""
    if is_todo(value):
        return "**TODO**"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _range(f: FieldSpec) -> str:
    if f.min is None and f.max is None:
        return ""
    low = "−∞" if f.min is None else f"{f.min:g}"
    high = "∞" if f.max is None else f"{f.max:g}"
    return f"[{low}, {high}]"


def _nulls(f: FieldSpec) -> str:
    if not f.nullable:
        return "not null"
    return f"≤ {f.max_null_fraction:.1%}" if f.max_null_fraction is not None else "allowed"


def _notes(f: FieldSpec) -> str:
    notes = []
    if f.length is not None:
        notes.append(f"{f.length} values per row")
    if f.domain:
        shown = ", ".join(str(v) for v in f.domain[:12])
        notes.append(
            f"one of: {shown}" + (f" (+{len(f.domain) - 12})" if len(f.domain) > 12 else "")
        )
    if f.timezone:
        notes.append(f"timezone {f.timezone}")
    if f.id:
        notes.append("id (unique, not a feature)")
    if f.pii:
        notes.append("PII")
    if f.drift_sensitive:
        notes.append("drift-sensitive")
    if f.leakage_risk:
        notes.append(f"leakage risk: {f.leakage_risk}")
    if f.source:
        notes.append(f"source: {f.source}")
    return "; ".join(notes)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


_ENV.filters.update(cell=_cell, range=_range, nulls=_nulls, notes=_notes, size=_size)
_ICONS = {
    "pass": "✅ pass",
    "fail": "❌ fail",
    "missing": "⚠️ missing",
    "warn": "⚠️ warn",
    "skipped": "⏭ skipped",
}
_ENV.filters["status"] = lambda s: _ICONS.get(s, s)
_VERDICTS = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "❔ inconclusive"}
_ENV.filters["verdict"] = lambda v: _VERDICTS.get(v, v)
_ENV.filters["num"] = lambda x: "undefined" if x is None else f"{x:.4g}"


def render_readme(
    spec: HandoffSpec,
    *,
    record: PackRecord,
    artifacts: list[dict[str, Any]],
    environment: dict[str, Any],
    checklist: list[CheckResult],
    bundle_name: str,
    responses: list[dict[str, Any] | None] | None = None,
    acceptance: Any = None,
    blocks: list[str] | None = None,
    outputs: OutputContract | None = None,
) -> str:
    """The handoff README: every statement in it is re-checked by ``mlhandoff verify``.

    ``acceptance`` is the evaluation measured at pack (an ``AcceptanceReport``), if any;
    ``blocks`` are capabilities' own README sections (Markdown), placed before the checklist.
    """
    return _ENV.get_template("README.md.j2").render(
        spec=spec,
        record=record,
        outputs=outputs or spec.outputs(),
        artifacts=artifacts,
        env=environment,
        checklist=checklist,
        bundle_name=bundle_name,
        responses=responses or [],
        error_codes=ERROR_CODES,
        acceptance=acceptance,
        blocks=blocks or [],
        mlhandoff_version=__version__,
    )


def render_model_card(
    spec: HandoffSpec, *, record: PackRecord, environment: dict[str, Any], acceptance: Any = None
) -> str:
    return _ENV.get_template("MODEL_CARD.md.j2").render(
        spec=spec, record=record, env=environment, acceptance=acceptance
    )


def template(name: str) -> jinja2.Template:
    """A packaged template with the filters above (cell, num, status, ...)."""
    return _ENV.get_template(name)
