"""Finding personal data in text columns: e-mail addresses, phone numbers, card numbers that pass
the Luhn check, IBANs that pass their mod-97 check, IP addresses.

A rule is a pattern (RE2 and Python agree on it) that pyarrow runs over a whole column to find
candidate rows, and a validator that confirms each distinct candidate value in Python: a
16-digit id that fails Luhn, or an IBAN-shaped code whose checksum is wrong, is not flagged.
Findings carry the field, the rule and a count of rows, never a value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

#: Rows of one table scanned at most (the sample, the eval sample): enough to find a habit.
MAX_SCAN_ROWS = 200_000


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum (ISO/IEC 7812) of a string of digits."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """ISO 13616: country letters, two check digits, 11 to 30 letters and digits; mod 97 == 1."""
    iban = text.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", iban):
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _card(match: str) -> bool:
    digits = re.sub(r"[ -]", "", match)
    # issuer ranges of the card schemes (2 Mastercard, 3 Amex/Diners/JCB, 4 Visa, 5 MC, 6 Discover)
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_ok(digits)


def _phone(match: str) -> bool:
    return 8 <= sum(c.isdigit() for c in match) <= 15


def _ip(match: str) -> bool:
    try:
        ipaddress.ip_address(match)
    except ValueError:
        return False
    return True


def _always(match: str) -> bool:
    return True


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: str
    valid: Callable[[str], bool]
    #: Looser rules (phone, IP) look at the text with valid card numbers and IBANs blanked
    #: out, so the digit groups of an IBAN are not also a phone number.
    loose: bool = False

    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.pattern)


RULES: tuple[Rule, ...] = (
    Rule("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", _always),
    Rule(
        "phone",
        r"(?:\+|\b00)[1-9][0-9 ().-]{6,20}[0-9]|\(?\b[0-9]{3}\)?[ .-][0-9]{3}[ .-][0-9]{4}\b",
        _phone,
        loose=True,
    ),
    Rule("card_number", r"\b[0-9](?:[ -]?[0-9]){12,18}\b", _card),
    Rule("iban", r"\b[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}\b", iban_ok),
    Rule(
        "ip_address",
        r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b|(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}",
        _ip,
        loose=True,
    ),
)
RULE_NAMES = tuple(r.name for r in RULES)
_STRICT = tuple(r for r in RULES if r.name in ("card_number", "iban"))


@dataclass(frozen=True)
class Finding:
    data: str
    field: str
    rule: str
    rows: int

    def describe(self) -> str:
        return f"{self.data} field '{self.field}': {self.rule} in {self.rows} row(s)"


def scan_table(table: pa.Table, data: str, columns: list[str] | None = None) -> list[Finding]:
    """Every (field, rule) with at least one row whose text holds a valid match."""
    table = table.slice(0, MAX_SCAN_ROWS)
    findings = []
    for name in columns if columns is not None else table.column_names:
        column = _as_text(table.column(name))
        if column is None:
            continue
        for rule in RULES:
            rows = _count(column, rule)
            if rows:
                findings.append(Finding(data, name, rule.name, rows))
    return findings


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return None
    return column.cast(pa.large_string())


def _count(column: pa.ChunkedArray, rule: Rule) -> int:
    """Rows with a valid match: pyarrow (RE2) narrows to candidates, Python confirms each
    distinct candidate once."""
    hits = pc.fill_null(pc.match_substring_regex(column, rule.pattern), False)
    candidates = column.filter(hits)
    if len(candidates) == 0:
        return 0
    pattern = rule.compiled()
    counts = pc.value_counts(candidates)
    rows = 0
    for value, count in zip(
        counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
    ):
        text = _blank_strict(value) if rule.loose else value
        if any(rule.valid(m.group(0)) for m in pattern.finditer(text)):
            rows += count
    return rows


def _blank_strict(value: str) -> str:
    for rule in _STRICT:

        def blank(match: re.Match[str], rule: Rule = rule) -> str:
            text = match.group(0)
            return " " * len(text) if rule.valid(text) else text

        value = rule.compiled().sub(blank, value)
    return value
