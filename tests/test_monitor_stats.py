"""Reference profiles and drift statistics, each checked against scipy on the same data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, entropy, ks_2samp, wasserstein_distance

from mlhandoff.monitor.profile import FieldProfile, Profile, ProfileCounter, build_reference
from mlhandoff.monitor.stats import (
    EPSILON,
    chi2,
    js,
    kl,
    ks,
    ks_statistic,
    null_rate,
    psi,
    smoothed,
    unseen_rate,
    wasserstein,
)
from mlhandoff.spec.models import DataContract, OutputContract

CONTRACT = DataContract.model_validate(
    {
        "fields": {
            "x": {"type": "float", "nullable": True},
            "n": {"type": "int"},
            "c": {"type": "category", "domain": ["a", "b", "c"]},
            "s": {"type": "string"},
            "flag": {"type": "bool"},
            "id": {"type": "string", "id": True},
        }
    }
)
OUTPUTS = OutputContract.model_validate(
    {"fields": {"score": {"type": "float"}, "label": {"type": "int"}}}
)


def _table(rng: np.random.Generator, rows: int, shift: float = 0.0) -> tuple[pa.Table, pa.Table]:
    x = rng.normal(shift, 1.0, rows)
    x[rng.random(rows) < 0.05] = np.nan
    score = 1 / (1 + np.exp(-rng.normal(-2 + shift, 1, rows)))
    inputs = pa.table(
        {
            "x": pa.array(x, from_pandas=True),
            "n": rng.poisson(3 + shift, rows),
            "c": rng.choice(["a", "b", "c"], rows, p=[0.6, 0.3, 0.1]),
            "s": rng.choice(["u", "v", "w", "z"], rows),
            "flag": rng.random(rows) < 0.2,
            "id": [f"r{i}" for i in range(rows)],
        }
    )
    return inputs, pa.table({"score": score, "label": (score >= 0.5).astype(np.int64)})


def _reference(rows: int = 5000, seed: int = 0) -> Profile:
    inputs, outputs = _table(np.random.default_rng(seed), rows)
    return build_reference(CONTRACT, OUTPUTS, inputs, outputs, source="test", classes=[0, 1])


def _window(reference: Profile, rows: int, shift: float, seed: int = 1) -> Profile:
    inputs, outputs = _table(np.random.default_rng(seed), rows, shift)
    return ProfileCounter(reference).count(inputs, outputs)[0]


# --- the reference profile ---------------------------------------------------------------------


def test_reference_slots() -> None:
    ref = _reference()
    x = ref.inputs["x"]
    assert x.kind == "numeric" and x.edges is not None
    assert x.edges.size == 11 and x.counts.size == 13  # missing, below, 10 bins, above
    assert x.counts[1] == x.counts[-1] == 0  # the reference is inside its own range
    assert 0.03 < x.nulls / x.rows < 0.07
    assert ref.inputs["c"].categories == ("a", "b", "c")
    assert ref.inputs["flag"].categories == ("false", "true")
    assert ref.inputs["s"].categories is not None and set(ref.inputs["s"].categories) == set("uvwz")
    assert ref.inputs["id"].kind == "other" and ref.inputs["id"].counts.tolist() == [0, 5000]
    assert ref.outputs["label"].categories == ("0", "1")
    assert ref.outputs["score"].kind == "numeric"
    assert ref.rows == 5000 and all(p.rows == 5000 for p in ref.inputs.values())
    assert ref.source == "test"


def test_numeric_slots_at_the_edges() -> None:
    ref = _reference()
    x = ref.inputs["x"]
    assert x.edges is not None
    lo, hi = float(x.edges[0]), float(x.edges[-1])
    column = pa.array([None, lo - 1, lo, hi, hi + 1, float("inf"), float("-inf"), float("nan")])
    counted = ProfileCounter(ref).count({"x": column})[0].inputs["x"]
    assert counted.counts[0] == 2  # null and NaN are missing
    assert counted.counts[1] == 2  # below: lo - 1 and -inf
    assert counted.counts[2] == 1  # the lowest edge opens the first bin
    assert counted.counts[-2] == 1  # the top edge closes the last bin
    assert counted.counts[-1] == 2  # above: hi + 1 and inf


def test_a_constant_reference_has_one_bin() -> None:
    contract = DataContract.model_validate({"fields": {"k": {"type": "int"}}})
    ref = build_reference(contract, OUTPUTS, pa.table({"k": [7] * 50}), pa.table({}), source="")
    k = ref.inputs["k"]
    assert k.edges is not None and k.edges.tolist() == [7.0, 7.0]
    counted = ProfileCounter(ref).count({"k": pa.array([6, 7, 7, 8, None])})[0].inputs["k"]
    assert counted.counts.tolist() == [1, 1, 2, 1]


def test_an_all_null_reference_column_counts_values_as_outside() -> None:
    contract = DataContract.model_validate({"fields": {"v": {"type": "float", "nullable": True}}})
    table = pa.table({"v": pa.nulls(10, pa.float64())})
    ref = build_reference(contract, OUTPUTS, table, pa.table({}), source="")
    counted = ProfileCounter(ref).count({"v": pa.array([1.0, None])})[0].inputs["v"]
    assert counted.counts.tolist() == [1, 1] and counted.unseen == 1


def test_profile_json_round_trip() -> None:
    ref = _reference()
    again = Profile.from_json(ref.to_json())
    assert again.to_json() == ref.to_json()
    with pytest.raises(ValueError, match="upgrade mlhandoff"):
        Profile.from_json({**ref.to_json(), "version": 99})


def test_profiles_of_partitions_add_up_to_the_profile_of_the_whole() -> None:
    ref = _reference()
    inputs, outputs = _table(np.random.default_rng(5), 3000, 0.5)
    counter = ProfileCounter(ref)
    whole = counter.count(inputs, outputs)[0]
    parts = [
        counter.count(inputs.slice(a, b - a), outputs.slice(a, b - a))[0]
        for a, b in ((0, 1000), (1000, 1001), (1001, 3000))
    ]
    merged = parts[0].merge(parts[1]).merge(parts[2])
    _assert_same(merged, whole)


def test_grouped_counting_is_counting_each_group() -> None:
    ref = _reference()
    inputs, outputs = _table(np.random.default_rng(6), 2000, 0.3)
    groups = np.random.default_rng(7).integers(0, 3, 2000)
    counter = ProfileCounter(ref)
    per_group = counter.count(inputs, outputs, groups=groups, n_groups=4)
    for g in range(4):
        mask = pa.array(groups == g)
        alone = counter.count(inputs.filter(mask), outputs.filter(mask))[0]
        _assert_same(per_group[g], alone)
    assert per_group[3].rows == 0


def test_profiles_with_other_bins_do_not_merge() -> None:
    a, b = _reference(seed=0), _reference(seed=1)
    with pytest.raises(ValueError, match="different bins"):
        a.merge(b)


def _assert_same(a: Profile, b: Profile) -> None:
    assert a.rows == b.rows
    for role in ("inputs", "outputs"):
        for name, pa_ in getattr(a, role).items():
            pb = getattr(b, role)[name]
            assert pa_.counts.tolist() == pb.counts.tolist(), name
            assert pa_.finite == pb.finite
            if pa_.sums is not None:
                assert pb.sums is not None
                np.testing.assert_allclose(pa_.sums, pb.sums, rtol=1e-12, atol=1e-9)
                assert pa_.sumsq == pytest.approx(pb.sumsq, rel=1e-12)


# --- statistics against scipy ------------------------------------------------------------------


def _pair(shift: float = 0.4) -> tuple[FieldProfile, FieldProfile, FieldProfile, FieldProfile]:
    ref = _reference()
    cur = _window(ref, 4000, shift)
    return ref.inputs["x"], cur.inputs["x"], ref.inputs["c"], cur.inputs["c"]


def test_smoothing_adds_epsilon_to_both_and_renormalises() -> None:
    counts = np.array([0, 5, 15])
    q = smoothed(counts)
    assert q.sum() == pytest.approx(1.0)
    assert q[0] == pytest.approx(EPSILON / (1 + 3 * EPSILON))


@pytest.mark.parametrize("shift", [0.0, 0.4, 2.0])
def test_psi_and_kl_are_scipy_entropies_of_the_smoothed_shares(shift: float) -> None:
    for ref, cur in _pairs(shift):
        p, q = smoothed(ref.values), smoothed(cur.values)
        assert psi(ref, cur) == pytest.approx(entropy(q, p) + entropy(p, q), rel=1e-9)
        assert kl(ref, cur) == pytest.approx(entropy(q, p), rel=1e-9)


@pytest.mark.parametrize("shift", [0.0, 0.4, 2.0])
def test_js_is_scipys_base_2_distance(shift: float) -> None:
    for ref, cur in _pairs(shift):
        p, q = ref.values / ref.values.sum(), cur.values / cur.values.sum()
        assert js(ref, cur) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)


def _pairs(shift: float) -> list[tuple[FieldProfile, FieldProfile]]:
    x_ref, x_cur, c_ref, c_cur = _pair(shift)
    return [(x_ref, x_cur), (c_ref, c_cur)]


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
def test_chi2_is_scipys_contingency_test(shift: float) -> None:
    for ref, cur in _pairs(shift):
        table = np.vstack([ref.values, cur.values])
        table = table[:, table.sum(axis=0) > 0]
        expected = chi2_contingency(table, correction=False).pvalue
        assert chi2(ref, cur) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_ks_equals_scipy_on_values_that_sit_on_the_edges() -> None:
    """Integers whose every value is an edge: the binned D is the raw D, the p-value scipy's."""
    rng = np.random.default_rng(3)
    contract = DataContract.model_validate({"fields": {"k": {"type": "int"}}})
    reference = rng.integers(0, 8, 3000)
    ref = build_reference(contract, OUTPUTS, pa.table({"k": reference}), pa.table({}), source="")
    edges = ref.inputs["k"].edges
    assert edges is not None and set(edges.tolist()) == set(range(8))
    for shift in (0, 1):
        current = np.clip(rng.integers(0, 8, 2000) + rng.integers(0, 2, 2000) * shift, 0, 7)
        cur = ProfileCounter(ref).count({"k": pa.array(current)})[0]
        raw = ks_2samp(reference, current, method="asymp")
        assert ks_statistic(ref.inputs["k"], cur.inputs["k"]) == pytest.approx(raw.statistic)
        assert ks(ref.inputs["k"], cur.inputs["k"]) == pytest.approx(raw.pvalue, rel=1e-9)


def test_ks_on_bins_never_exceeds_the_raw_statistic() -> None:
    rng = np.random.default_rng(4)
    contract = DataContract.model_validate({"fields": {"v": {"type": "float"}}})
    reference = rng.normal(0, 1, 4000)
    ref = build_reference(contract, OUTPUTS, pa.table({"v": reference}), pa.table({}), source="")
    for shift in (0.0, 0.05, 0.3, 1.0):
        current = rng.normal(shift, 1, 3000)
        cur = ProfileCounter(ref).count({"v": pa.array(current)})[0]
        binned = ks_statistic(ref.inputs["v"], cur.inputs["v"])
        raw = ks_2samp(reference, current).statistic
        assert binned is not None
        # the gap inside one bin is unseen: at most that bin's share of either sample
        widest = max(ref.inputs["v"].values.max() / 4000, cur.inputs["v"].values.max() / 3000)
        assert binned <= raw + 1e-12
        assert raw - binned <= widest


def test_wasserstein_is_scipys_on_the_slot_means_over_the_reference_std() -> None:
    x_ref, x_cur, *_ = _pair(0.7)
    assert x_ref.sums is not None and x_cur.sums is not None
    keep_r, keep_c = x_ref.values > 0, x_cur.values > 0
    u = x_ref.sums[1:][keep_r] / x_ref.values[keep_r]
    v = x_cur.sums[1:][keep_c] / x_cur.values[keep_c]
    expected = wasserstein_distance(u, v, x_ref.values[keep_r], x_cur.values[keep_c])
    _, std = x_ref.mean_std()
    assert wasserstein(x_ref, x_cur) == pytest.approx(expected / std, rel=1e-9)


@pytest.mark.parametrize("shift", [0.0, 0.3, 3.0])
def test_wasserstein_is_within_the_binning_error_of_the_raw_distance(shift: float) -> None:
    rng = np.random.default_rng(8)
    contract = DataContract.model_validate({"fields": {"v": {"type": "float"}}})
    reference, current = rng.normal(0, 2, 4000), rng.normal(shift, 2, 3000)
    ref = build_reference(contract, OUTPUTS, pa.table({"v": reference}), pa.table({}), source="")
    counter = ProfileCounter(ref)
    cur = counter.count({"v": pa.array(current)})[0]
    std = reference.std()
    raw = wasserstein_distance(reference, current) / std
    # Moving each value to its slot's mean moves a distribution by the mean absolute deviation
    # within slots: the triangle inequality bounds the error by that of both samples.
    bound = (
        _within_slot_spread(ref.inputs["v"], reference)
        + _within_slot_spread(ref.inputs["v"], current)
    ) / std
    assert abs(wasserstein(ref.inputs["v"], cur.inputs["v"]) - raw) <= bound + 1e-12
    if shift == 3.0:
        assert raw > 1.0 and wasserstein(ref.inputs["v"], cur.inputs["v"]) > 1.0


def _within_slot_spread(shape: FieldProfile, values: np.ndarray) -> float:
    from mlhandoff.monitor.profile import slot_indices

    slots = slot_indices(shape, pa.array(values))
    total = 0.0
    for s in np.unique(slots):
        inside = values[slots == s]
        total += np.abs(inside - inside.mean()).sum()
    return total / values.size


def test_null_and_unseen_rates() -> None:
    ref = _reference()
    column = pa.array(["a", None, "zz", "b", "yy", None, "c", "a"])
    x = pa.array([1.0, None, None, None, 2.0, 3.0, 4.0, 5.0])
    x = pc.if_else(pa.array([False, True, True, True, False, True, False, False]), None, x)
    cur = ProfileCounter(ref).count({"c": column, "x": x})[0]
    assert unseen_rate(ref.inputs["c"], cur.inputs["c"]) == pytest.approx(2 / 6)
    ref_nulls = ref.inputs["x"].nulls / ref.inputs["x"].rows
    assert null_rate(ref.inputs["x"], cur.inputs["x"]) == pytest.approx(4 / 8 - ref_nulls)


def test_statistics_of_an_empty_or_all_null_window_are_undefined() -> None:
    ref = _reference()
    empty = ref.empty()
    all_null = ProfileCounter(ref).count({"x": pa.nulls(5, pa.float64())})[0]
    for stat in (psi, kl, js, ks, chi2, wasserstein):
        assert stat(ref.inputs["x"], empty.inputs["x"]) is None
        assert stat(ref.inputs["x"], all_null.inputs["x"]) is None
    assert null_rate(ref.inputs["x"], empty.inputs["x"]) is None
    assert null_rate(ref.inputs["x"], all_null.inputs["x"]) == pytest.approx(
        1 - ref.inputs["x"].nulls / 5000
    )


# --- properties --------------------------------------------------------------------------------

counts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=3, max_size=12)


def _profile(values: list[int]) -> FieldProfile:
    return FieldProfile("categorical", np.array([0, *values], dtype=np.int64), categories=())


@settings(max_examples=200, deadline=None)
@given(counts, st.data())
def test_divergences_are_non_negative_and_zero_for_identical(
    a: list[int], data: st.DataObject
) -> None:
    b = data.draw(st.lists(st.integers(0, 10_000), min_size=len(a), max_size=len(a)))
    p, q = _profile(a), _profile(b)
    if sum(a) == 0 or sum(b) == 0:
        assert psi(p, q) is None and js(p, q) is None
        return
    assert psi(p, q) >= 0 and kl(p, q) >= -1e-12
    assert 0 <= js(p, q) <= 1 + 1e-12
    assert js(p, q) == pytest.approx(js(q, p), abs=1e-12)
    assert psi(p, q) == pytest.approx(psi(q, p), rel=1e-9, abs=1e-12)
    assert psi(p, p) == pytest.approx(0, abs=1e-12)
    assert kl(p, p) == pytest.approx(0, abs=1e-12)
    assert js(p, p) == pytest.approx(0, abs=1e-7)
    scaled = _profile([v * 3 for v in a])
    assert psi(p, scaled) == pytest.approx(0, abs=1e-12)  # shares, not counts


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.floats(-5, 5), st.just(float("nan"))), max_size=40),
        min_size=3,
        max_size=3,
    )
)
def test_merge_is_associative_and_commutative(parts: list[list[float]]) -> None:
    ref = _reference(500)
    counter = ProfileCounter(ref)
    a, b, c = (counter.count({"x": pa.array(p, pa.float64())})[0] for p in parts)
    _assert_same(a.merge(b).merge(c), a.merge(b.merge(c)))
    _assert_same(a.merge(b), b.merge(a))
    _assert_same(a.merge(ref.empty()), a)


def test_dictionary_columns_count_like_plain_text() -> None:
    ref = _reference()
    values = ["a", None, "zz", "b", "c", "a", None, "yy", "a"]
    plain = ProfileCounter(ref).count({"c": pa.array(values)})[0].inputs["c"]
    encoded = pa.array(values).dictionary_encode()
    assert isinstance(encoded, pa.DictionaryArray)
    coded = ProfileCounter(ref).count({"c": encoded})[0].inputs["c"]
    assert coded.counts.tolist() == plain.counts.tolist() == [2, 3, 1, 1, 2]
