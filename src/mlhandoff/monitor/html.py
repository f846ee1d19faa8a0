"""The monitor's HTML report: one self-contained page (inline CSS and SVG, no scripts) with the
alerts that fired, every window's rule values, and reference-vs-current histograms of each
field whose rule breached, in the window the rule judged worst."""

from __future__ import annotations

from html import escape

from mlhandoff.monitor.report import Histogram, MonitorReport

_STATE_COLOURS = {
    "ok": "#e6f4ea",
    "pending": "#fff4d6",
    "firing": "#fbe0e0",
    "not judged": "#f2f2f2",
}
_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:80rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f6f6f6}td.l,th.l{text-align:left}
.firing{color:#a40000;font-weight:600}.note{color:#666;font-size:.85rem}
figure{display:inline-block;margin:0 1rem 1rem 0;vertical-align:top}
figcaption{font-size:.85rem;max-width:34rem}
"""


def render_html(report: MonitorReport) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>mlhandoff monitor: {escape(report.bundle)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Monitoring report</h1><p>Bundle <code>{escape(report.bundle)}</code>, data "
        f"<code>{escape(report.data)}</code> ({escape(report.layout)}, {report.files} file(s), "
        f"{report.rows:,} rows), windows of {escape(report.step)} (UTC).<br>Reference: "
        f"{escape(report.reference)}.</p>",
        _fired(report),
        _windows(report),
    ]
    if report.histograms:
        parts.append("<h2>Reference vs current</h2>")
        parts += [_svg(h) for h in report.histograms]
    extra = [*report.notes, *(f"skipped {s['path']}: {s['reason']}" for s in report.skipped)]
    if report.labels:
        extra.append("labels: " + ", ".join(f"{k} {v}" for k, v in report.labels.items()))
    if extra:
        parts.append(
            "<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in extra) + "</ul>"
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _fired(report: MonitorReport) -> str:
    if not report.fired:
        return "<p><b>No alert fired.</b></p>"
    rows = "".join(
        f"<tr><td class='l firing'>{escape(f.alert)}</td><td class='l'>{escape(f.severity)}</td>"
        f"<td class='l'>{escape(f.rule)}</td><td>{_number(f.value)}</td>"
        f"<td class='l'>{escape(f.since.isoformat())}</td></tr>"
        for f in report.fired
    )
    return (
        "<h2>Alerts that fired</h2><table><tr><th class='l'>alert</th><th class='l'>severity</th>"
        f"<th class='l'>rule</th><th>value</th><th class='l'>firing since</th></tr>{rows}</table>"
    )


def _windows(report: MonitorReport) -> str:
    if not report.windows:
        return "<p>No windows: the data had no rows.</p>"
    rules = [(r.rule, r.bound) for r in report.windows[0].rules]
    head = "".join(
        f"<th>{escape(name)}<br><span class='note'>{escape(bound)}</span></th>"
        for name, bound in rules
    )
    body = []
    for w in report.windows:
        cells = "".join(
            f"<td style='background:{_STATE_COLOURS.get(r.state, '#fff')}' "
            f"title='{escape(r.state)}{': ' + escape(r.note) if r.note else ''}'>"
            f"{_number(r.value)}</td>"
            for r in w.rules
        )
        body.append(
            f"<tr><td class='l'>{escape(w.start.strftime('%Y-%m-%d %H:%M'))}</td><td>{w.rows:,}</td>{cells}</tr>"
        )
    return (
        "<h2>Windows</h2><p class='note'>Each rule's value over its own window ending at the "
        "window's end; green ok, yellow pending, red firing, grey not judged (hover for why)."
        f"</p><table><tr><th class='l'>window start</th><th>rows</th>{head}</tr>"
        + "".join(body)
        + "</table>"
    )


def _svg(h: Histogram) -> str:
    """Side-by-side bars per slot: reference grey, current blue, shares in percent."""
    n = len(h.slots)
    bar, gap, height, top, bottom = 10, 8, 160, 10, 70
    width = 40 + n * (2 * bar + gap)
    peak = max([*h.reference, *h.current, 1e-9])
    items = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height + top + bottom}' "
        f"role='img' aria-label='{escape(h.rule)}'>",
        f"<line x1='35' y1='{top + height}' x2='{width}' y2='{top + height}' stroke='#999'/>",
        f"<text x='0' y='{top + 8}' font-size='9'>{peak:.0%}</text>",
    ]
    for i, (name, ref, cur) in enumerate(zip(h.slots, h.reference, h.current, strict=True)):
        x = 40 + i * (2 * bar + gap)
        for offset, share, colour in ((0, ref, "#9e9e9e"), (bar, cur, "#1f6fb2")):
            tall = height * share / peak
            items.append(
                f"<rect x='{x + offset}' y='{top + height - tall:.1f}' width='{bar}' "
                f"height='{tall:.1f}' fill='{colour}'><title>{escape(name)}: {share:.2%}</title></rect>"
            )
        label_y = top + height + 6
        items.append(
            f"<text font-size='8' transform='translate({x + bar},{label_y}) rotate(45)'>"
            f"{escape(name[:18])}</text>"
        )
    items.append("</svg>")
    caption = (
        f"<figcaption><b>{escape(h.rule)}</b>: reference (grey) vs {escape(h.window)} (blue)"
        "</figcaption>"
    )
    return "<figure>" + "".join(items) + caption + "</figure>"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"
