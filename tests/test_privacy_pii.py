"""Undeclared personal data stops pack; unused PII never reaches the bundle; values never shown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import mlhandoff
from mlhandoff.capabilities.pii_scan import Finding, iban_ok, luhn_ok, scan_table
from mlhandoff.errors import InputError
from mlhandoff.spec import parse_spec


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with threadpool_limits(1):
        yield


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("some check digit always completes a Luhn number")


def _iban_complete(country: str, bban: str) -> str:
    moved = bban + country + "00"
    remainder = int("".join(str(int(c, 36)) for c in moved)) % 97
    return f"{country}{98 - remainder:02d}{bban}"


@given(st.sampled_from("23456"), st.text("0123456789", min_size=11, max_size=17), st.data())
def test_card_numbers_are_flagged_only_when_luhn_passes(
    first: str, body: str, data: st.DataObject
) -> None:
    card = _luhn_complete(first + body)
    assert [f.rule for f in scan_table(pa.table({"c": [card]}), "t")] == ["card_number"]
    # change any one digit: Luhn catches every single-digit error, so nothing is flagged
    at = data.draw(st.integers(0, len(card) - 1))
    other = data.draw(st.sampled_from([d for d in "0123456789" if d != card[at]]))
    broken = card[:at] + other + card[at + 1 :]
    assert not luhn_ok(broken)
    assert "card_number" not in {f.rule for f in scan_table(pa.table({"c": [broken]}), "t")}


@given(
    st.sampled_from(["DE", "FR", "GB", "NL", "CH"]),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=11, max_size=30),
    st.data(),
)
def test_ibans_are_flagged_only_when_their_checksum_passes(
    country: str, bban: str, data: st.DataObject
) -> None:
    iban = _iban_complete(country, bban)
    assert iban_ok(iban)
    assert "iban" in {f.rule for f in scan_table(pa.table({"c": [iban]}), "t")}
    digits = [i for i in range(2, len(iban)) if iban[i].isdigit()]  # check digits included
    at = data.draw(st.sampled_from(digits))
    other = data.draw(st.sampled_from([c for c in "0123456789" if c != iban[at]]))
    broken = iban[:at] + other + iban[at + 1 :]
    assert not iban_ok(broken)  # mod 97 catches every single-digit substitution
    assert "iban" not in {f.rule for f in scan_table(pa.table({"c": [broken]}), "t")}


def test_each_rule_finds_its_kind_and_counts_rows() -> None:
    table = pa.table(
        {
            "mail": ["write to ann@example.com", "none", None, "bob.b@mail.example.org"],
            "phone": ["+49 30 1234567", "(555) 123-4567", "call 0049 171 2345678", "12-34"],
            "card": ["4111 1111 1111 1111", "4111111111111112", "5500-0000-0000-0004", "x"],
            "iban": ["DE89 3704 0044 0532 0130 00", "DE89370400440532013001", "", "GB82WEST12345698765432"],
            "ip": ["10.0.0.1", "999.1.1.1", "fe80::1", "12:30:45"],
            "plain": ["tx_00000001", "2026-01-01T10:00:00Z", "1.5", "grocery"],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )  # fmt: skip
    found = {(f.field, f.rule): f.rows for f in scan_table(table, "sample")}
    assert found == {
        ("mail", "email"): 2,
        ("phone", "phone"): 3,
        ("card", "card_number"): 2,  # 4111…1112 fails Luhn
        ("iban", "iban"): 2,  # …3001 fails mod 97
        ("ip", "ip_address"): 2,  # 999.1.1.1 and 12:30:45 are not addresses
    }


def test_dictionary_columns_are_scanned() -> None:
    column = pa.array(["a@b.io", "a@b.io", "x"]).dictionary_encode()
    assert scan_table(pa.table({"c": column}), "t") == [Finding("t", "c", "email", 2)]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 300
    data = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(0, 10, n)})
    data["contact"] = [f"user{i}@example.com" for i in range(n)]
    data["ref"] = [f"4111111111111{i % 1000:03d}"[:16] for i in range(n)]  # mostly failing Luhn
    data["y"] = ((data["a"] + data["b"] / 5) > 1).astype("int64")
    return data


def _spec(contact: str, privacy: str = "{}") -> object:
    return parse_spec(
        f"""
name: pii-demo
version: "1"
model: {{path: unused, flavor: sklearn, task: binary_classification, version_tag: v1,
         features: [a, b]}}
data_contract:
  label: y
  fields:
    a: {{type: float}}
    b: {{type: float, min: 0, max: 10}}
    contact: {contact}
acceptance:
  data: eval.parquet
  criteria: [{{metric: roc_auc, threshold: 0.5}}]
  bootstrap: {{resamples: 0}}
privacy: {privacy}
"""
    )


def _pack(frame: pd.DataFrame, tmp_path: Path, spec: object) -> Path:
    frame.to_parquet(tmp_path / "eval.parquet")
    model = LogisticRegression().fit(frame[["a", "b"]], frame["y"])
    sample = frame.drop(columns=["y"])
    return mlhandoff.pack(
        model, sample=sample, spec=spec, out=tmp_path / "dist", base_dir=tmp_path
    ).path


def test_undeclared_pii_stops_pack_naming_field_rule_and_count(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(InputError) as info:
        _pack(frame, tmp_path, _spec("{type: string, id: true}"))
    message = str(info.value)
    assert "sample field 'contact': email in 300 row(s)" in message
    assert "golden field 'contact': email in 100 row(s)" in message
    assert "privacy.acknowledged" in message and "pii: true" in message
    assert "@example.com" not in message and "user1" not in message  # never a value
    assert "ref" not in message  # card-shaped numbers that fail Luhn are not flagged
    assert not (tmp_path / "dist" / "pii-demo-1").exists()


def test_declared_pii_the_model_does_not_use_is_dropped(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    spec = _spec("{type: string, id: true, pii: true}", "{pii_fields: [contact]}")
    bundle = _pack(frame, tmp_path, spec)
    for rel in ("data/golden_inputs.parquet", "data/eval_sample.parquet"):
        assert "contact" not in pq.read_schema(bundle / rel).names, rel
    report = json.loads((bundle / "reports" / "pii.json").read_text())
    assert report["dropped"] == {"golden": ["contact"], "eval": ["contact"]}
    assert report["findings"] == [
        {"data": "sample", "field": "contact", "rule": "email", "rows": 300, "status": "declared"}
    ]
    assert report["kept_pii_features"] == []
    card = (bundle / "docs" / "MODEL_CARD.md").read_text()
    assert "PII it does not use, dropped from them: contact." in card
    lines = {r.id: r for r in mlhandoff.verify(bundle).results}
    assert lines["pii"].status == "pass", lines["pii"]
    assert lines["golden_replay"].status == "pass", lines["golden_replay"]
    assert lines["acceptance_measured"].status in ("pass", "warn")


def test_acknowledged_pii_is_packed_with_its_reason(frame: pd.DataFrame, tmp_path: Path) -> None:
    privacy = "{acknowledged: [{field: contact, rule: email, reason: synthetic addresses}]}"
    bundle = _pack(frame, tmp_path, _spec("{type: string, id: true}", privacy))
    report = json.loads((bundle / "reports" / "pii.json").read_text())
    assert {f["status"] for f in report["findings"]} == {"acknowledged"}
    assert "contact" in pq.read_schema(bundle / "data/golden_inputs.parquet").names
    assert {r.id: r for r in mlhandoff.verify(bundle).results}["pii"].status == "pass"


def test_an_acknowledgement_for_another_rule_does_not_cover(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    privacy = "{acknowledged: [{field: contact, rule: phone, reason: not this one}]}"
    with pytest.raises(InputError, match="field 'contact': email"):
        _pack(frame, tmp_path, _spec("{type: string, id: true}", privacy))


def test_verify_rescans_the_bundled_data(example_bundle: Path) -> None:
    line = {r.id: r for r in mlhandoff.verify(example_bundle).results}["pii"]
    assert line.status == "pass"
    assert "PII features kept (the model uses them): distance_from_home_km" in line.detail
