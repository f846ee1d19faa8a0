"""``mlhandoff monitor`` end to end on prediction logs written as the server writes them, and on
the bad inputs of issue 12: empty and one-row windows, a missing field, an all-null column, a
flood of unseen categories, naive timestamps, a truncated file, duplicate and unknown labels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import mlhandoff
from example_modules import load_example_module
from mlhandoff.cli import app
from mlhandoff.errors import InputError
from mlhandoff.monitor.report import MonitorReport
from mlhandoff.monitor.run import monitor
from mlhandoff.spec import load_spec
from mlhandoff.spec.models import Monitoring

runner = CliRunner()
START = "2026-04-20"  # local days (Europe/Berlin): 2026-04-19T22:00Z is the first hour


@pytest.fixture(scope="module")
def replay() -> ModuleType:
    return load_example_module("replay")


@pytest.fixture(scope="module")
def drift_log(example_bundle: Path, replay, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two days, 200 rows an hour on average; from the second day on, drifted."""
    out = tmp_path_factory.mktemp("drift") / "predictions"
    frame, at = replay.traffic(9600, 7, START, 2, 24.0)
    replay.write_log(example_bundle, frame, at, out)
    replay.write_labels(frame, out.parent / "labels.parquet")
    return out


def _rows(report: MonitorReport, rule: str) -> list[tuple[str, str, float | None]]:
    return [
        (w.end.strftime("%d %H:%M"), r.state, r.value)
        for w in report.windows
        for r in w.rules
        if r.rule == rule
    ]


def test_the_drift_alert_fires_after_its_for_and_not_before(
    example_bundle: Path, drift_log: Path
) -> None:
    report = monitor(example_bundle, drift_log, step="1h")
    assert report.layout == "prediction log" and report.files == 48 and report.rows == 9600
    amount = _rows(report, "amount_eur psi")
    states = [state for _, state, _ in amount]
    # The 1d window is judged once the data covers it; before the drift, every value is low.
    assert states[:23] == ["not judged"] * 23
    first_breach = states.index("pending")
    assert all(s == "ok" for s in states[23:first_breach])
    # for: 1h: pending at the first breached evaluation, firing one hour later, not before.
    assert states[first_breach + 1] == "firing"
    assert all(v is not None and v > 0.2 for _, _, v in amount[first_breach : first_breach + 2])
    fired = {f.rule: f for f in report.fired}
    assert fired["amount_eur psi"].alert == "InputDrift"
    assert fired["amount_eur psi"].since.strftime("%d %H:%M") == amount[first_breach + 1][0]
    drift_start = "2026-04-20T22:00:00+00:00"  # local midnight of the second day
    assert all(f.since.isoformat() > drift_start for f in report.fired if f.alert == "InputDrift")
    assert "country js" not in fired  # the drift left the countries alone
    assert any(h.rule == "amount_eur psi" for h in report.histograms)


def test_realised_performance_comes_with_the_labels(example_bundle: Path, drift_log: Path) -> None:
    labels = drift_log.parent / "labels.parquet"
    report = monitor(example_bundle, drift_log, labels=labels, join_key="transaction_id")
    known = pq.read_metadata(labels).num_rows
    assert report.labels["joined_rows"] == known and report.labels["unknown_keys"] == 0
    labelled = sum(w.performance.get("labelled", 0) for w in report.windows)
    assert labelled == known
    recall = [v for _, state, v in _rows(report, "recall (realised)") if state != "not judged"]
    assert recall and all(0 <= v <= 1 for v in recall)
    without = monitor(example_bundle, drift_log)
    assert {s for _, s, _ in _rows(without, "recall (realised)")} == {"not judged"}


def test_cli_table_json_html_and_exit_code(
    example_bundle: Path, drift_log: Path, tmp_path: Path
) -> None:
    html = tmp_path / "report.html"
    result = runner.invoke(
        app, ["monitor", str(example_bundle), "--data", str(drift_log), "--html", str(html)]
    )
    assert result.exit_code == 1, result.output
    assert "Alerts that fired" in result.output and "InputDrift" in result.output
    assert "amount_eur psi" in result.output
    page = html.read_text()
    _Strict().feed(page)
    assert (
        page.count("<svg") == len(monitor(example_bundle, drift_log).histograms)
        and "amount_eur psi" in page
    )
    result = runner.invoke(
        app, ["monitor", str(example_bundle), "--data", str(drift_log), "--json"]
    )
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["ok"] is False and payload["fired"][0]["since"].endswith("Z")
    quiet = runner.invoke(
        app,
        ["monitor", str(example_bundle), "--data", str(drift_log), "--until", "2026-04-20T22:00Z"],
    )
    assert quiet.exit_code == 0, quiet.output
    assert "no alert fired" in quiet.output


def test_since_keeps_the_window_history(example_bundle: Path, drift_log: Path) -> None:
    full = monitor(example_bundle, drift_log)
    late = monitor(
        example_bundle,
        drift_log,
        since=_utc("2026-04-21T08:00"),
        until=_utc("2026-04-21T14:00"),
    )
    assert [w.start.hour for w in late.windows] == [8, 9, 10, 11, 12, 13]
    by_end = {w.end: w for w in full.windows}
    for w in late.windows:  # the 1d rules look back before --since: the same values
        assert [r.value for r in w.rules] == [r.value for r in by_end[w.end].rules]


class _Strict(HTMLParser):
    """Fails on unbalanced tags: the report is a well-formed page."""

    VOID = frozenset({"meta", "br", "line", "rect"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()

    def close(self) -> None:
        super().close()
        assert not self.stack


# --- bad input ------------------------------------------------------------------------------

RULES = {
    "drift": [
        {"field": "amount_eur", "window": "1h", "for": "1h", "alert": "InputDrift", "min_rows": 20},
        {
            "field": "tx_count_1h",
            "statistic": "null_rate",
            "threshold": 0.1,
            "window": "1h",
            "alert": "InputDrift",
            "min_rows": 20,
        },
        {
            "field": "merchant_category",
            "statistic": "unseen_rate",
            "threshold": 0.05,
            "window": "1h",
            "alert": "InputDrift",
            "min_rows": 20,
        },
        {
            "field": "country",
            "statistic": "chi2",
            "window": "1h",
            "alert": "InputDrift",
            "min_rows": 20,
        },
    ],
    "outputs": [
        {
            "field": "score",
            "statistic": "wasserstein",
            "threshold": 3,
            "window": "2h",
            "alert": "ScoreShift",
            "min_rows": 20,
        },
    ],
    "service": [{"metric": "contract_failure_rate", "threshold": 0.05, "alert": "Contract"}],
    "alerts": [
        {"name": "InputDrift", "runbook": "look"},
        {"name": "ScoreShift", "runbook": "look"},
        {"name": "Contract", "runbook": "look"},
    ],
}


@pytest.fixture(scope="module")
def hourly(example_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example with hourly rules (and a null-rate, unseen-rate and chi2 rule)."""
    spec = load_spec(example_dir / "handoff.yaml")
    spec.monitoring = Monitoring.model_validate(RULES)
    out = tmp_path_factory.mktemp("hourly")
    return mlhandoff.pack(spec=spec, base_dir=example_dir, out=out).path


@pytest.fixture(scope="module")
def clean_log(hourly: Path, replay, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "predictions"
    frame, at = replay.traffic(2400, 11, START, 1, 99.0)
    replay.write_log(hourly, frame, at, out)
    return out


def _edited(clean: Path, target: Path, edit) -> Path:
    """A copy of the clean log with every file's table passed through ``edit``."""
    target.mkdir()
    for path in sorted(clean.glob("*.parquet")):
        pq.write_table(edit(pq.read_table(path)), target / path.name)
    return target


def _state(report: MonitorReport, rule: str) -> Iterator[tuple[str, float | None, str]]:
    for w in report.windows:
        for r in w.rules:
            if r.rule == rule:
                yield r.state, r.value, r.note


def test_clean_traffic_raises_nothing(hourly: Path, clean_log: Path) -> None:
    report = monitor(hourly, clean_log)
    assert report.ok, report.fired
    states = {
        s
        for rule in ("amount_eur psi", "tx_count_1h null_rate")
        for s, _, _ in _state(report, rule)
    }
    assert "firing" not in states and "ok" in states  # 100 rows an hour: PSI may blip pending


def test_an_empty_window_and_a_one_row_window(
    hourly: Path, clean_log: Path, tmp_path: Path
) -> None:
    files = sorted(clean_log.glob("*.parquet"))
    gap = _edited(clean_log, tmp_path / "gap", lambda t: t)
    (gap / files[12].name).unlink()  # an hour with no rows inside the day
    one = pq.read_table(files[13]).slice(0, 1)
    pq.write_table(one, gap / files[13].name)
    report = monitor(hourly, gap)
    windows = {w.start.hour: w for w in report.windows}
    empty = {
        r.rule: r for r in windows[pq.read_table(files[12])["logged_at"][0].as_py().hour].rules
    }
    assert (
        empty["amount_eur psi"].state == "not judged" and empty["amount_eur psi"].note == "no rows"
    )
    single = {r.rule: r for r in windows[one["logged_at"][0].as_py().hour].rules}
    assert single["amount_eur psi"].state == "not judged"
    assert "1 rows < min_rows 20" in single["amount_eur psi"].note
    assert single["amount_eur psi"].value is not None  # computed, shown, not judged
    assert report.ok


def test_a_monitored_field_missing_from_the_logs(
    hourly: Path, clean_log: Path, tmp_path: Path
) -> None:
    log = _edited(clean_log, tmp_path / "log", lambda t: t.drop_columns(["input.amount_eur"]))
    report = monitor(hourly, log)
    assert {(s, n) for s, _, n in _state(report, "amount_eur psi")} == {
        ("not judged", "not in the data")
    }
    assert "ok" in {s for s, _, _ in _state(report, "country chi2")}


def test_an_all_null_column(hourly: Path, clean_log: Path, tmp_path: Path) -> None:
    def nulls(t: pa.Table) -> pa.Table:
        i = t.column_names.index("input.tx_count_1h")
        return t.set_column(i, "input.tx_count_1h", pa.nulls(t.num_rows, pa.int64()))

    report = monitor(hourly, _edited(clean_log, tmp_path / "log", nulls))
    null_rate = list(_state(report, "tx_count_1h null_rate"))
    judged = [(s, v) for s, v, _ in null_rate if s != "not judged"]
    assert judged and all(v is not None and v > 0.9 for _, v in judged)
    assert {f.rule for f in report.fired} == {"tx_count_1h null_rate"}


def test_a_flood_of_unseen_categories(hourly: Path, clean_log: Path, tmp_path: Path) -> None:
    def flood(t: pa.Table) -> pa.Table:
        i = t.column_names.index("input.merchant_category")
        new = pa.array([f"brand_new_{k % 500}" for k in range(t.num_rows)])
        return t.set_column(i, "input.merchant_category", new)

    report = monitor(hourly, _edited(clean_log, tmp_path / "log", flood))
    values = [v for s, v, _ in _state(report, "merchant_category unseen_rate") if s != "not judged"]
    assert values and all(v == 1.0 for v in values)
    assert "merchant_category unseen_rate" in {f.rule for f in report.fired}


def test_timestamps_without_a_timezone(hourly: Path, clean_log: Path, tmp_path: Path) -> None:
    def naive(t: pa.Table) -> pa.Table:
        i = t.column_names.index("logged_at")
        return t.set_column(i, "logged_at", t.column(i).cast(pa.timestamp("us")))

    log = _edited(clean_log, tmp_path / "log", naive)
    with pytest.raises(InputError, match=r"without a timezone.*--timezone"):
        monitor(hourly, log)
    assert monitor(hourly, log, timezone="UTC").rows == monitor(hourly, clean_log).rows
    result = runner.invoke(app, ["monitor", str(hourly), "--data", str(log)])
    assert result.exit_code == 2 and "without a timezone" in result.output


def test_a_truncated_file_is_skipped_and_reported(
    hourly: Path, clean_log: Path, tmp_path: Path
) -> None:
    log = _edited(clean_log, tmp_path / "log", lambda t: t)
    files = sorted(log.glob("*.parquet"))
    victim = files[5]
    lost = pq.read_metadata(victim).num_rows
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # a copy cut short
    (log / "predictions-20990101T000000-99999.parquet.partial").write_bytes(b"PAR1 being written")
    (log / "README.txt").write_text("not data")
    report = monitor(hourly, log)
    assert report.skipped == [{"path": str(victim), "reason": report.skipped[0]["reason"]}]
    assert "Parquet" in report.skipped[0]["reason"] or "parquet" in report.skipped[0]["reason"]
    total = sum(pq.read_metadata(f).num_rows for f in clean_log.glob("*.parquet"))
    assert report.files == len(files) - 1 and report.rows == total - lost
    clean = monitor(hourly, clean_log)
    kept = {w.end: w.rows for w in clean.windows}
    gone = pq.read_table(clean_log / victim.name)["logged_at"][0].as_py().hour
    assert {w.end: w.rows for w in report.windows if w.start.hour != gone} == {
        e: r for e, r in kept.items() if (e.hour - 1) % 24 != gone
    }
    result = runner.invoke(app, ["monitor", str(hourly), "--data", str(log)])
    assert "skipped" in result.output and victim.name in result.output.replace("\n", "")


def test_labels_with_duplicate_conflicting_and_unknown_keys(
    hourly: Path, clean_log: Path, tmp_path: Path
) -> None:
    ids = pa.concat_arrays(
        [
            pq.read_table(f)["input.transaction_id"].combine_chunks()
            for f in sorted(clean_log.glob("*.parquet"))
        ]
    ).to_pylist()
    rng = np.random.default_rng(0)
    y = (rng.random(len(ids)) < 0.05).astype(int).tolist()
    keys = ids + ids[:10] + ids[10:15] + ["tx_nobody_1", "tx_nobody_2", None]
    labels = y + y[:10] + [1 - v for v in y[10:15]] + [1, 0, 1]
    path = tmp_path / "labels.csv"
    pa.csv.write_csv(pa.table({"transaction_id": keys, "is_fraud": labels}), path)
    report = monitor(hourly, clean_log, labels=path, join_key="transaction_id")
    assert report.labels == {
        "rows": len(keys),
        "keys": len(ids) - 5 + 2,
        "joined_rows": len(ids) - 5,
        "duplicate_rows": 15,
        "conflicting_keys": 5,
        "unknown_keys": 2,
        "rows_without_key_or_label": 1,
    }
    with pytest.raises(InputError, match="no column 'order_id'"):
        monitor(hourly, clean_log, labels=path, join_key="order_id")


def test_a_plain_table_is_validated_against_the_contract(
    hourly: Path, clean_log: Path, tmp_path: Path
) -> None:
    """A table (not a prediction log) may hold rows the server would refuse: they are counted."""
    table = pa.concat_tables([pq.read_table(f) for f in sorted(clean_log.glob("*.parquet"))])
    plain = table.rename_columns([c.split(".", 1)[-1] for c in table.column_names])
    amount = plain.column("amount_eur").to_numpy().copy()
    amount[::10] = -5.0  # below the contract's min: 10% of rows fail it
    plain = plain.set_column(plain.column_names.index("amount_eur"), "amount_eur", pa.array(amount))
    path = tmp_path / "day.parquet"
    pq.write_table(plain.drop_columns(["distance_from_home_km"]), path)
    report = monitor(hourly, path)
    assert report.layout == "table"
    checked = sum(len(w.rules) and w.rows for w in report.windows)
    failing = sum(n for w in report.windows for k, n in w.violations.items() if "amount_eur" in k)
    assert checked == plain.num_rows and failing == len(amount[::10])
    shares = [v for s, v, _ in _state(report, "contract_failure_rate") if s != "not judged"]
    assert shares and max(shares) > 0.05
    assert any("amount_eur" in k for w in report.windows for k in w.violations)
    assert "contract_failure_rate" in {f.rule for f in report.fired}


def test_bad_arguments_are_input_errors(hourly: Path, clean_log: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a duration"):
        monitor(hourly, clean_log, step="an hour")
    with pytest.raises(InputError, match="go together"):
        monitor(hourly, clean_log, labels=tmp_path / "l.csv")
    with pytest.raises(InputError, match="not found"):
        monitor(hourly, tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no \.parquet or \.csv files"):
        monitor(hourly, tmp_path / "empty")
    result = runner.invoke(
        app, ["monitor", str(hourly), "--data", str(clean_log), "--since", "yesterday"]
    )
    assert result.exit_code == 2 and "ISO 8601" in result.output
    nothing = monitor(hourly, clean_log, since=_utc("2030-01-01T00:00"))
    assert nothing.windows == [] and nothing.ok
    assert "no rows in the data" in " ".join(nothing.notes)


def test_csv_logs_read_like_parquet(hourly: Path, clean_log: Path, tmp_path: Path) -> None:
    target = tmp_path / "csv"
    target.mkdir()
    for path in sorted(clean_log.glob("*.parquet")):
        table = pq.read_table(path)
        table = table.drop_columns(["input.distance_from_home_km"])
        pa.csv.write_csv(table, target / (path.stem + ".csv"))
    from_csv, from_parquet = monitor(hourly, target), monitor(hourly, clean_log)
    assert from_csv.rows == from_parquet.rows
    for a, b in zip(from_csv.windows, from_parquet.windows, strict=True):
        va = {r.rule: r.value for r in a.rules}
        vb = {r.rule: r.value for r in b.rules}
        assert va["amount_eur psi"] == pytest.approx(vb["amount_eur psi"], nan_ok=True) or (
            va["amount_eur psi"] is None and vb["amount_eur psi"] is None
        )


def _utc(text: str):
    from datetime import UTC, datetime

    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_file_that_breaks_mid_way_counts_nothing(
    hourly: Path, clean_log: Path, tmp_path: Path
) -> None:
    """Whole files only: rows read from a file before it broke are dropped with it."""
    table = pa.concat_tables([pq.read_table(f) for f in sorted(clean_log.glob("*.parquet"))])
    table = table.drop_columns(["input.distance_from_home_km"])
    target = tmp_path / "csv"
    target.mkdir()
    good, bad = target / "a.csv", target / "b.csv"
    pa.csv.write_csv(table, good)
    lines = good.read_text().splitlines(keepends=True)
    body = lines[1:] * (1 + (3 << 20) // len(good.read_text()))  # over two 1 MiB blocks
    bad.write_text(lines[0] + "".join(body[:-1]) + "a,b\n" + body[-1])
    report = monitor(hourly, target, chunk_rows=1000)
    assert [s["path"] for s in report.skipped] == [str(bad)]
    assert report.rows == table.num_rows and report.files == 1
