"""Comparing two versions of a data contract: which changes break data that passed before.

A change is *breaking* when data valid under the old contract can be rejected by the new one
(removed or new required field, type change, narrowed range, domain or length, nullable to
non-null, a new pattern), or when values change meaning (unit). Everything else (widening,
documentation) is *compatible*. ``mlhandoff diff`` (the version-upgrade handoff) calls
:func:`diff_contracts` too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from mlhandoff.spec.models import DataContract, FieldSpec

#: Metadata that documents a field without changing what data passes.
_DOC_KEYS = ("description", "source", "refresh", "leakage_risk", "drift_sensitive", "pii")
#: Types whose values all pass as another type: old -> new.
_WIDENINGS = {("int", "float"), ("category", "string")}


@dataclass(frozen=True)
class Change:
    """One difference: ``kind`` names what changed; ``breaking`` whether old data may fail."""

    field: str
    kind: str
    breaking: bool
    detail: str


@dataclass
class ContractDiff:
    changes: list[Change] = field(default_factory=list)

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    @property
    def compatible(self) -> list[Change]:
        return [c for c in self.changes if not c.breaking]

    def to_dict(self) -> dict[str, Any]:
        return {
            "breaking": len(self.breaking),
            "compatible": len(self.compatible),
            "changes": [asdict(c) for c in self.changes],
        }


def diff_contracts(old: DataContract, new: DataContract) -> ContractDiff:
    """Every change from ``old`` to ``new``, each classified breaking or compatible."""
    changes: list[Change] = []
    if old.label != new.label:
        changes.append(
            Change(
                "(label)",
                "label_changed",
                True,
                f"label '{old.label}' -> '{new.label}': training and eval data must follow",
            )
        )
    for name in old.fields:
        if name not in new.fields:
            changes.append(
                Change(name, "field_removed", True, "removed; producers still sending it fail")
            )
    for name, spec in new.fields.items():
        before = old.fields.get(name)
        if before is None:
            required = not spec.nullable
            detail = "new required field" if required else "new nullable field (may be absent)"
            changes.append(Change(name, "field_added", required, f"{detail} ({spec.type})"))
            continue
        changes += list(_field_changes(name, before, spec))
    return ContractDiff(changes)


def _field_changes(name: str, old: FieldSpec, new: FieldSpec) -> Iterator[Change]:
    if old.type != new.type:
        widened = (old.type, new.type) in _WIDENINGS
        yield Change(
            name,
            "type_changed",
            not widened,
            f"type {old.type} -> {new.type}" + (" (widened)" if widened else ""),
        )
    yield from _bound(name, "min", old.min, old.min_exclusive, new.min, new.min_exclusive, -1)
    yield from _bound(name, "max", old.max, old.max_exclusive, new.max, new.max_exclusive, 1)
    if old.nullable != new.nullable:
        yield Change(
            name,
            "nullable_changed",
            old.nullable,
            "nullable -> non-null" if old.nullable else "non-null -> nullable",
        )
    yield from _limit(name, "max_null_fraction", old.max_null_fraction, new.max_null_fraction, 1)
    yield from _domain(name, old, new)
    if old.unseen != new.unseen:
        yield Change(
            name,
            "unseen_changed",
            new.unseen == "reject",
            f"unseen values: {_policy(old)} -> {_policy(new)}",
        )
    if old.pattern != new.pattern:
        yield Change(
            name,
            "pattern_changed",
            new.pattern is not None,
            f"pattern {old.pattern!r} -> {new.pattern!r}"
            + ("" if new.pattern is None else " (old values may not match)"),
        )
    yield from _limit(name, "min_length", old.min_length, new.min_length, -1)
    yield from _limit(name, "max_length", old.max_length, new.max_length, 1)
    if old.length != new.length:
        yield Change(name, "length_changed", True, f"array length {old.length} -> {new.length}")
    if old.timezone != new.timezone:
        yield Change(
            name,
            "timezone_changed",
            old.timezone is None,
            f"timezone {old.timezone} -> {new.timezone}"
            + (": naive timestamps now rejected" if old.timezone is None else ""),
        )
    if old.id != new.id:
        yield Change(
            name,
            "id_changed",
            new.id,
            "now an id: unique within a batch" if new.id else "no longer an id",
        )
    if old.unit != new.unit:
        yield Change(
            name, "unit_changed", True, f"unit {old.unit!r} -> {new.unit!r}: values change meaning"
        )
    docs = [k for k in _DOC_KEYS if getattr(old, k) != getattr(new, k)]
    if docs:
        yield Change(name, "metadata_changed", False, "changed: " + ", ".join(docs))


def _bound(
    name: str,
    side: str,
    old: float | None,
    old_excl: bool,
    new: float | None,
    new_excl: bool,
    sign: int,
) -> Iterator[Change]:
    """A min (sign -1) or max (sign +1) bound: narrowing breaks, widening does not."""
    if old == new and old_excl == new_excl:
        return
    shown = f"{side} {_show(old, old_excl)} -> {_show(new, new_excl)}"
    if new is None:
        yield Change(name, f"{side}_widened", False, shown)
        return
    if old is None:
        yield Change(name, f"{side}_narrowed", True, shown)
        return
    narrower = (new - old) * -sign > 0 or (new == old and new_excl and not old_excl)
    kind = "narrowed" if narrower else "widened"
    yield Change(name, f"{side}_{kind}", narrower, shown)


def _limit(
    name: str, key: str, old: float | None, new: float | None, sign: int
) -> Iterator[Change]:
    """A limit where a smaller value (sign +1: an upper limit) or larger (-1) is stricter."""
    if old == new:
        return
    stricter = new is not None and (old is None or (new - old) * sign < 0)
    yield Change(
        name,
        f"{key}_{'narrowed' if stricter else 'widened'}",
        stricter,
        f"{key} {old} -> {new}",
    )


def _domain(name: str, old: FieldSpec, new: FieldSpec) -> Iterator[Change]:
    if old.domain == new.domain:
        return
    if new.domain is None:
        yield Change(name, "domain_removed", False, "domain removed: any value passes")
        return
    if old.domain is None:
        yield Change(
            name,
            "domain_added",
            new.unseen == "reject",
            f"domain added ({len(new.domain)} values)",
        )
        return
    before, after = {str(v) for v in old.domain}, {str(v) for v in new.domain}
    removed, added = sorted(before - after), sorted(after - before)
    if removed:
        yield Change(
            name,
            "domain_narrowed",
            new.unseen == "reject",
            f"values removed: {', '.join(removed[:5])}"
            + ("" if new.unseen == "reject" else f" (now {_policy(new)})"),
        )
    if added:
        yield Change(name, "domain_widened", False, f"values added: {', '.join(added[:5])}")


def _policy(spec: FieldSpec) -> str:
    bucket = getattr(spec.unseen, "bucket", None)
    return f"mapped to '{bucket}'" if bucket is not None else str(spec.unseen)


def _show(value: float | None, exclusive: bool) -> str:
    if value is None:
        return "none"
    return f"{value:g}" + (" (exclusive)" if exclusive else "")
