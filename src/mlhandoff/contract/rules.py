"""One field's rules, compiled once into a check that runs vectorized on one Arrow array.

Cheap aggregates come first (null counts, min/max, the dictionary of a category column); masks
over the rows are built only for a rule the aggregates show broken, so clean data costs about one
pass per column and a one-row request a few microseconds per field. Every row-level rule yields a
boolean mask; a value outside one rule is caught by exactly that rule (an infinite value only by
``finite``, text that is not a number only by ``type``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlhandoff.contract.coerce import FALSE, TRUE, is_text, iso_text
from mlhandoff.contract.report import Hit, Rule
from mlhandoff.contract.types import is_list
from mlhandoff.spec.models import FieldSpec

_NUMBER = r"(?i)^\s*[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|nan|inf|infinity)\s*$"
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$"
_OFFSET = r"(Z|[+-]\d{2}:?\d{2})$"
_UTC_US = pa.timestamp("us", tz="UTC")
#: 0001-01-01 and 9999-12-31 in days since 1970-01-01: the years every reader can hold.
_FIRST_DAY, _LAST_DAY = -719_162, 2_932_896
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000}


@dataclass
class Found:
    """What one chunk's checks found: rule hits, and nulls per field for max_null_fraction."""

    hits: list[Hit] = field(default_factory=list)
    nulls: dict[str, int] = field(default_factory=dict)


#: Up to this many rows (a request) some rules run in plain Python instead of Arrow kernels.
_SMALL = 16


def _plain_text(a: pa.Array) -> pa.Array:
    return a if pa.types.is_string(a.type) else a.cast(pa.string())


def _np_mask(mask: pa.Array, null_as: bool = False) -> np.ndarray:
    """A boolean Arrow array as numpy, nulls read as ``null_as``."""
    if mask.null_count:
        mask = pc.fill_null(mask, null_as)
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def _valid(a: pa.Array) -> np.ndarray:
    """The validity bitmap as a numpy mask (unpacked, not copied through Arrow kernels)."""
    bitmap = a.buffers()[0] if a.null_count else None
    if bitmap is None:
        return np.ones(len(a), dtype=bool) if not a.null_count else ~_np_mask(a.is_null())
    bits = np.unpackbits(
        np.frombuffer(bitmap, dtype=np.uint8), count=a.offset + len(a), bitorder="little"
    )
    return bits[a.offset :].view(bool)


def _numbers_of(a: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """A numeric array's values without copying, and its null slots (None when there are none).

    Converting an array with nulls through ``to_numpy`` would copy it to fill NaN; the slots'
    values are arbitrary instead, and every rule masks them out.
    """
    if not a.null_count:
        return a.to_numpy(zero_copy_only=False), None
    data = a.buffers()[1]
    dtype = np.dtype(a.type.to_pandas_dtype())
    values = np.frombuffer(data, dtype=dtype, count=a.offset + len(a))[a.offset :]
    return values, ~_valid(a)


def _year_bounds(t: pa.DataType) -> tuple[int, int] | None:
    """The first and last instant of the years 1 to 9999 in ``t``'s units (None: ``t`` cannot
    leave them, as nanoseconds since 1970, or is no time type)."""
    if pa.types.is_date32(t):
        return _FIRST_DAY, _LAST_DAY
    per_day = None
    if pa.types.is_date64(t):
        per_day = 86_400_000
    elif pa.types.is_timestamp(t) and t.unit in _PER_SECOND:
        per_day = 86_400 * _PER_SECOND[t.unit]
    if per_day is None:
        return None
    return _FIRST_DAY * per_day, (_LAST_DAY + 1) * per_day - 1


def _instants(arr: pa.Array, aware: np.ndarray, naive: np.ndarray) -> pa.Array:
    """ISO text as UTC instants: with an offset as written, naive ones as if written in UTC
    (for the year check); nulls elsewhere. Raises on an ISO-shaped impossible value."""
    null = pa.scalar(None, arr.type)
    instants = pc.cast(pc.if_else(pa.array(aware), arr, null), _UTC_US)
    if not naive.any():
        return instants
    wall = pc.cast(pc.if_else(pa.array(naive), arr, null), pa.timestamp("us")).cast(_UTC_US)
    return pc.if_else(pa.array(aware), instants, wall)


def _is_whole(value: object) -> bool:
    return isinstance(value, int) or (isinstance(value, str) and value.lstrip("+-").isdigit())


class FieldCheck:
    """The compiled rules of one field: ``check(array, found, parse_text)`` adds what is broken."""

    def __init__(self, name: str, spec: FieldSpec) -> None:
        self.name = name
        self.spec = spec
        self.lo, self.hi = spec.min, spec.max
        domain = spec.domain
        self.domain_text = pa.array([str(v) for v in domain], pa.string()) if domain else None
        self.domain_set = frozenset(str(v) for v in domain) if domain else None
        self.domain_int = (
            pa.array([int(v) for v in domain], pa.int64())
            if domain and all(_is_whole(v) for v in domain)
            else None
        )
        self.bucket: str | None = getattr(spec.unseen, "bucket", None)
        self.regex = f"^(?:{spec.pattern})$" if spec.pattern else None
        self._run: Callable[[pa.Array, Found, bool], pa.Array | None] = {
            "int": self._numeric,
            "float": self._numeric,
            "bool": self._bool,
            "string": self._text,
            "category": self._text,
            "timestamp": self._timestamp,
            "date": self._date,
            "array": self._array,
        }[spec.type]
        self._min_what = ("at or below exclusive min" if spec.min_exclusive else "below min") + (
            f" {spec.min:g}" if spec.min is not None else ""
        )
        self._max_what = ("at or above exclusive max" if spec.max_exclusive else "above max") + (
            f" {spec.max:g}" if spec.max is not None else ""
        )

    def check(self, arr: pa.Array, found: Found, parse_text: bool = False) -> None:
        if pa.types.is_null(arr.type):  # every value null (e.g. JSON null in one record)
            self._nulls(arr, found)
            return
        typed = self._run(arr, found, parse_text)
        if typed is not None and self.spec.id and len(typed) > 1:
            self._unique(typed, found)

    # --- shared pieces ---------------------------------------------------------------------

    def _hit(
        self,
        found: Found,
        rule: Rule,
        what: str,
        rows: np.ndarray,
        values: pa.Array,
        shown: np.ndarray | None = None,
    ) -> None:
        """Record a broken rule at ``rows``: a boolean mask or sorted row positions."""
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        if len(rows):
            found.hits.append(Hit(self.name, rule, what, rows, values, rule == Rule.UNSEEN, shown))

    def _type_hit(self, found: Found, arr: pa.Array, what: str) -> None:
        self._hit(found, Rule.TYPE, what, _valid(arr), arr)

    def _nulls(self, arr: pa.Array, found: Found, type_bad: np.ndarray | None = None) -> None:
        if not arr.null_count:
            found.nulls[self.name] = 0
            return
        if type_bad is None and self.spec.nullable:
            found.nulls[self.name] = arr.null_count
            return
        mask = ~_valid(arr)
        if type_bad is not None:
            mask &= ~type_bad
        found.nulls[self.name] = int(np.count_nonzero(mask))
        if not self.spec.nullable:
            self._hit(found, Rule.NOT_NULL, "null in a non-nullable field", mask, arr)

    # --- numbers -----------------------------------------------------------------------------

    def _numeric(self, arr: pa.Array, found: Found, parse_text: bool) -> pa.Array | None:
        kind = self.spec.type
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        source = arr
        type_bad: np.ndarray | None = None
        if is_text(arr.type):
            parsed, type_bad = self._parse_numbers(arr, found, parse_text)
            if parsed is None:
                return None
            arr = source = parsed
        elif pa.types.is_decimal(arr.type):
            arr = arr.cast(pa.float64())
        elif not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
            self._type_hit(found, arr, f"expected {kind}, got {arr.type}")
            return None
        if not len(arr):
            found.nulls[self.name] = 0
            return arr
        x, missing = _numbers_of(arr)
        if kind == "int" and pa.types.is_floating(arr.type):
            fractional = ((x != np.floor(x)) | np.isinf(x)) & ~np.isnan(x)
            if missing is not None:
                fractional &= ~missing
            if fractional.any():
                self._hit(found, Rule.TYPE, "not a whole number", fractional, source)
                missing = fractional if missing is None else missing | fractional
                type_bad = fractional if type_bad is None else type_bad | fractional
        self._numbers(x, missing, source, found, type_bad, None)
        if self.domain_text is not None and pa.types.is_integer(arr.type):
            self._domain(arr, found)
        return arr

    def _parse_numbers(
        self, arr: pa.Array, found: Found, parse_text: bool
    ) -> tuple[pa.Array | None, np.ndarray | None]:
        """Numbers written as text: parsed in text mode (CSV), a type violation otherwise."""
        if parse_text:
            for target in (
                (pa.int64(), pa.float64()) if self.spec.type == "int" else (pa.float64(),)
            ):
                try:
                    return pc.cast(arr, target), None
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    continue
        looks_numeric = _np_mask(pc.match_substring_regex(arr, pattern=_NUMBER), True)
        bad = ~looks_numeric & _valid(arr)
        if not parse_text:
            if bad.any():
                self._hit(found, Rule.TYPE, "not a number (the column holds text)", bad, arr)
            else:
                self._type_hit(found, arr, "a number sent as text; send it as a number")
            return None, None
        self._hit(found, Rule.TYPE, "not a number", bad, arr)
        kept = pc.if_else(pa.array(looks_numeric), arr, pa.scalar(None, arr.type))
        return pc.cast(kept, pa.float64()), bad

    def _numbers(
        self,
        x: np.ndarray,
        missing: np.ndarray | None,
        source: pa.Array,
        found: Found,
        type_bad: np.ndarray | None,
        to_rows: Callable[[np.ndarray], np.ndarray] | None,
    ) -> None:
        """Nulls/NaN, infinities and the range on values ``x`` (array elements if ``to_rows``).

        ``missing`` marks null slots (their values are arbitrary) and values that failed the
        type rule. Min and max alone clear a clean column; otherwise one pass marks every value
        outside the range (NaN and ±inf fail every comparison) and only those few are sorted
        into rules.
        """
        floating = x.dtype.kind == "f"
        if missing is None and self._clean(x, floating):
            if to_rows is None:
                found.nulls[self.name] = 0
            return
        ok = self._in_range(x, floating)
        if ok is None:  # an int field without bounds: only nulls to count
            bad = np.empty(0, dtype=np.int64)
        else:
            if missing is not None:
                ok |= missing
            bad = np.flatnonzero(~ok)
        v = x[bad]
        nan = np.isnan(v) if floating else np.zeros(len(v), dtype=bool)
        inf = np.isinf(v) if floating else nan
        if to_rows is None:
            null_slots = missing if missing is None or type_bad is None else missing & ~type_bad
            nulls = bad[nan]
            if null_slots is not None:
                nulls = np.union1d(np.flatnonzero(null_slots), nulls)
            found.nulls[self.name] = len(nulls)
            if len(nulls) and not self.spec.nullable:
                what = "null or NaN in a non-nullable field" if floating else "null value"
                self._hit(found, Rule.NOT_NULL, what, nulls, source)
            self._hit(found, Rule.FINITE, "infinite value", bad[inf], source, v[inf])
            prefix = ""
        else:
            broken = bad[nan | inf]
            if missing is not None:
                broken = np.union1d(np.flatnonzero(missing), broken)
            what = "null, NaN or infinite element"
            self._hit(found, Rule.FINITE, what, to_rows(broken), source)
            prefix = "element "
        finite = ~(nan | inf)
        for rule, bound, exclusive, what in (
            (Rule.MIN, self.lo, self.spec.min_exclusive, self._min_what),
            (Rule.MAX, self.hi, self.spec.max_exclusive, self._max_what),
        ):
            if bound is None:
                continue
            if rule == Rule.MIN:
                out = ((v <= bound) if exclusive else (v < bound)) & finite
            else:
                out = ((v >= bound) if exclusive else (v > bound)) & finite
            if to_rows is None:
                self._hit(found, rule, what, bad[out], source, v[out])
            else:
                self._hit(found, rule, prefix + what, to_rows(bad[out]), source)

    def _clean(self, x: np.ndarray, floating: bool) -> bool:
        """Whether values without null slots break no numeric rule, judged on min and max (a
        request's few values in plain Python: numpy's per-call overhead is most of the cost)."""
        if len(x) <= _SMALL:
            values = x.tolist()
            if floating and not all(math.isfinite(v) for v in values):
                return False
            return self._inside(min(values), max(values), floating)
        with np.errstate(invalid="ignore"):
            return self._inside(x.min(), x.max(), floating)

    def _inside(self, lo_seen: float, hi_seen: float, floating: bool) -> bool:
        """Whether a column's min and max (no nulls) show that no numeric rule is broken."""
        if floating and not (math.isfinite(lo_seen) and math.isfinite(hi_seen)):
            return False
        lo, hi = self.lo, self.hi
        if lo is not None and not (lo_seen > lo or (lo_seen == lo and not self.spec.min_exclusive)):
            return False
        return hi is None or hi_seen < hi or (hi_seen == hi and not self.spec.max_exclusive)

    def _in_range(self, x: np.ndarray, floating: bool) -> np.ndarray | None:
        """True where a value is finite and within the bounds (None: nothing to check)."""
        lo, hi = self.lo, self.hi
        ok: np.ndarray | None = None
        with np.errstate(invalid="ignore"):
            if lo is not None:
                ok = (x > lo) if self.spec.min_exclusive else (x >= lo)
            if hi is not None:
                upper = (x < hi) if self.spec.max_exclusive else (x <= hi)
                ok = upper if ok is None else np.logical_and(ok, upper, out=ok)
            if floating and (lo is None or hi is None):
                finite = np.isfinite(x)
                ok = finite if ok is None else np.logical_and(ok, finite, out=ok)
        return ok

    # --- booleans, text ------------------------------------------------------------------------

    def _bool(self, arr: pa.Array, found: Found, parse_text: bool) -> pa.Array | None:
        type_bad = None
        if is_text(arr.type):
            lower = pc.utf8_lower(arr)
            known = pc.is_in(lower, value_set=pa.array([*TRUE, *FALSE]))
            type_bad = ~_np_mask(known, True) & _valid(arr)
            if not parse_text:  # as numbers: the rows that are not booleans, else the column
                if type_bad.any():
                    what = "not a boolean (the column holds text)"
                    self._hit(found, Rule.TYPE, what, type_bad, arr)
                else:
                    self._type_hit(found, arr, "a boolean sent as text; send true or false")
                return None
            self._hit(found, Rule.TYPE, "not a boolean (true/false/1/0)", type_bad, arr)
            truth = pc.is_in(lower, value_set=pa.array(TRUE))
            arr = pc.if_else(known, truth, pa.scalar(None, pa.bool_()))
        elif not pa.types.is_boolean(arr.type):
            self._type_hit(found, arr, f"expected bool, got {arr.type}")
            return None
        self._nulls(arr, found, type_bad)
        return arr

    def _text(self, arr: pa.Array, found: Found, parse_text: bool) -> pa.Array | None:
        kind = self.spec.type
        t = arr.type
        inner = t.value_type if pa.types.is_dictionary(t) else t
        if not (is_text(inner) or pa.types.is_integer(inner)):
            self._type_hit(found, arr, f"expected {kind}, got {t}")
            return None
        self._nulls(arr, found)
        self._domain(arr, found)
        if self.regex is not None:
            mismatch = self._per_value(arr, self._not_matching)
            if mismatch is not None:
                what = f"does not match pattern {self.spec.pattern!r}"
                self._hit(found, Rule.PATTERN, what, mismatch, arr)
        if self.spec.min_length is not None or self.spec.max_length is not None:
            for rule, limit in (
                (Rule.MIN_LENGTH, self.spec.min_length),
                (Rule.MAX_LENGTH, self.spec.max_length),
            ):
                if limit is None:
                    continue
                bad = self._per_value(
                    arr, functools.partial(self._bad_length, rule=rule, limit=limit)
                )
                if bad is not None:
                    what = (
                        f"shorter than {limit} characters"
                        if rule == Rule.MIN_LENGTH
                        else (f"longer than {limit} characters")
                    )
                    self._hit(found, rule, what, bad, arr)
        return arr

    def _domain(self, arr: pa.Array, found: Found) -> None:
        """Values outside the domain: rejected, or allowed (counted) or bucketed as notices."""
        if self.domain_text is None:
            return
        outside = self._per_value(arr, self._outside_domain)
        if outside is None:
            return
        if self.spec.unseen == "reject":
            self._hit(found, Rule.DOMAIN, "not in the declared domain", outside, arr)
        elif self.bucket is not None:
            what = f"not in the domain; mapped to '{self.bucket}'"
            self._hit(found, Rule.UNSEEN, what, outside, arr)
        else:
            self._hit(found, Rule.UNSEEN, "not in the domain; allowed and counted", outside, arr)

    def _per_value(
        self, arr: pa.Array, bad_values: Callable[[pa.Array], np.ndarray | None]
    ) -> np.ndarray | None:
        """Rows whose value is bad; a dictionary column is judged on its (few) distinct values."""
        if not pa.types.is_dictionary(arr.type):
            return bad_values(arr)
        bad = bad_values(arr.dictionary)
        if bad is None:
            return None
        indices = arr.indices
        rows = bad[indices.fill_null(0).to_numpy(zero_copy_only=False)]
        return rows & _valid(arr) if arr.null_count else rows

    def _outside_domain(self, a: pa.Array) -> np.ndarray | None:
        if len(a) <= _SMALL and self.domain_set is not None:
            # A request's few values: a set lookup holds the GIL, where index_in would rebuild
            # its hash table and give the GIL up to a busy model thread (about 5 ms under load).
            values = a.to_pylist()
            if all(v is None or str(v) in self.domain_set for v in values):
                return None
            return np.array([v is not None and str(v) not in self.domain_set for v in values])
        if pa.types.is_integer(a.type) and self.domain_int is not None:
            index = pc.index_in(a, value_set=self.domain_int)
        else:
            index = pc.index_in(_plain_text(a), value_set=self.domain_text)
        if index.null_count == a.null_count:
            return None
        return _np_mask(pc.and_(index.is_null(), a.is_valid()))

    def _not_matching(self, a: pa.Array) -> np.ndarray | None:
        matched = pc.match_substring_regex(_plain_text(a), pattern=self.regex)
        if not matched.false_count:
            return None
        return _np_mask(pc.invert(matched))

    def _bad_length(self, a: pa.Array, rule: Rule, limit: int) -> np.ndarray | None:
        lengths = pc.utf8_length(_plain_text(a))
        bounds = pc.min_max(lengths)
        seen = bounds["min" if rule == Rule.MIN_LENGTH else "max"].as_py()
        if seen is None or (seen >= limit if rule == Rule.MIN_LENGTH else seen <= limit):
            return None
        bad = pc.less(lengths, limit) if rule == Rule.MIN_LENGTH else pc.greater(lengths, limit)
        return _np_mask(bad)

    # --- time ----------------------------------------------------------------------------------

    def _timestamp(self, arr: pa.Array, found: Found, parse_text: bool) -> pa.Array | None:
        type_bad = None
        if pa.types.is_timestamp(arr.type):
            naive = _valid(arr) if arr.type.tz is None else None
            typed = arr
        elif is_text(arr.type):
            parsed = self._parse_timestamps(arr, found)
            if parsed is None:
                return None
            typed, naive, type_bad = parsed
        else:
            self._type_hit(found, arr, f"expected timestamp, got {arr.type}")
            return None
        type_bad = self._years(typed, found, type_bad)
        self._nulls(arr, found, type_bad)
        if self.spec.timezone and naive is not None and naive.any():
            what = f"naive timestamp (no timezone); the contract requires {self.spec.timezone}"
            self._hit(found, Rule.TIMEZONE, what, naive, arr)
        return typed

    def _parse_timestamps(
        self, arr: pa.Array, found: Found
    ) -> tuple[pa.Array, np.ndarray | None, np.ndarray | None] | None:
        """ISO 8601 text (JSON has no timestamp type): instants with an offset, or naive ones.
        Rows are reported with the text as written; parsing reads :func:`iso_text`."""
        shown, arr = arr, iso_text(arr)
        try:
            return pc.cast(arr, _UTC_US), None, None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        valid = _valid(arr)
        iso = _np_mask(pc.match_substring_regex(arr, pattern=_ISO_TIMESTAMP), True)
        bad = ~iso & valid
        aware = _np_mask(pc.match_substring_regex(arr, pattern=_OFFSET)) & iso
        naive = valid & iso & ~aware
        try:
            typed = _instants(arr, aware, naive)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            # ISO-shaped but impossible (2024-02-30T...): find those rows one by one (rare path)
            impossible = np.zeros(len(arr), dtype=bool)
            for i in np.flatnonzero(iso & valid):
                target = _UTC_US if aware[i] else pa.timestamp("us")
                try:
                    pc.cast(arr.slice(i, 1), target)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    impossible[i] = True
            bad = bad | impossible
            aware, naive = aware & ~impossible, naive & ~impossible
            typed = _instants(arr, aware, naive)
        if bad.any():
            self._hit(found, Rule.TYPE, "not an ISO 8601 timestamp", bad, shown)
        return typed, naive, bad

    def _date(self, arr: pa.Array, found: Found, parse_text: bool) -> pa.Array | None:
        type_bad = None
        if pa.types.is_date(arr.type):
            typed = arr
        elif is_text(arr.type):
            looks = _np_mask(pc.match_substring_regex(arr, pattern=_ISO_DATE), True)
            # strptime nulls impossible dates (2024-02-30) so only those rows are reported
            parsed = pc.strptime(
                pc.if_else(pa.array(looks), arr, pa.scalar(None, arr.type)),
                format="%Y-%m-%d",
                unit="s",
                error_is_null=True,
            )
            typed = pc.cast(parsed, pa.date32())
            # a day past the month's end may roll over (02-30 -> 03-01): it must read back the same
            same = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), arr)
            impossible = looks & ~_np_mask(same)
            type_bad = (~looks | impossible) & _valid(arr)
            self._hit(found, Rule.TYPE, "not a valid ISO 8601 date (YYYY-MM-DD)", type_bad, arr)
        else:
            self._type_hit(found, arr, f"expected date, got {arr.type}")
            return None
        type_bad = self._years(typed, found, type_bad)
        self._nulls(arr, found, type_bad)
        return typed

    def _years(
        self, typed: pa.Array, found: Found, type_bad: np.ndarray | None
    ) -> np.ndarray | None:
        """Times outside the years 1 to 9999, which Python, pandas and the prediction log cannot
        hold: a type violation (``type_bad`` grows by those rows)."""
        bounds = _year_bounds(typed.type)
        if bounds is None or not len(typed) or typed.null_count == len(typed):
            return type_bad
        ints = typed.view(pa.int32() if pa.types.is_date32(typed.type) else pa.int64())
        seen = pc.min_max(ints)
        lo, hi = bounds
        if seen["min"].as_py() >= lo and seen["max"].as_py() <= hi:
            return type_bad
        x, missing = _numbers_of(ints)
        outside = (x < lo) | (x > hi)
        if missing is not None:
            outside &= ~missing
        shown = np.array(typed.filter(pa.array(outside)).cast(pa.string()).to_pylist())
        self._hit(found, Rule.TYPE, "outside the years 1 to 9999", outside, typed, shown)
        return outside if type_bad is None else type_bad | outside

    # --- arrays (embeddings) -----------------------------------------------------------------

    def _array(self, arr: pa.Array, found: Found, parse_text: bool) -> pa.Array | None:
        t = arr.type
        item = t.value_type if is_list(t) else None
        if item is None or not (pa.types.is_integer(item) or pa.types.is_floating(item)):
            self._type_hit(found, arr, f"expected an array of numbers, got {t}")
            return None
        length = self.spec.length
        if pa.types.is_fixed_size_list(t) and t.list_size != length:
            self._type_hit(found, arr, f"arrays of {t.list_size} values, expected {length}")
            return None
        self._nulls(arr, found)
        if not pa.types.is_fixed_size_list(t):
            sizes = pc.list_value_length(arr).fill_null(length).to_numpy(zero_copy_only=False)
            wrong = sizes != length
            if wrong.any():
                self._hit(found, Rule.LENGTH, f"not {length} values", wrong, arr)
        flat = pc.list_flatten(arr)
        if len(flat):
            parents = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)

            def to_rows(elements: np.ndarray) -> np.ndarray:
                return np.unique(parents[elements])

            x, missing = _numbers_of(flat)
            self._numbers(x, missing, arr, found, None, to_rows)
        return None  # arrays are never ids

    # --- ids ---------------------------------------------------------------------------------

    def _unique(self, arr: pa.Array, found: Found) -> None:
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        distinct = pc.count_distinct(arr).as_py()
        if distinct == len(arr) - arr.null_count:
            return
        codes = pc.dictionary_encode(arr).indices.fill_null(-1).to_numpy(zero_copy_only=False)
        _, first = np.unique(codes, return_index=True)
        repeat = np.ones(len(arr), dtype=bool)
        repeat[first] = False
        repeat &= codes >= 0
        self._hit(found, Rule.UNIQUE, "repeats an id seen earlier in the batch", repeat, arr)
