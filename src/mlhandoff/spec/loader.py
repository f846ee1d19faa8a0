"""Reading ``handoff.yaml`` with errors that point at ``file:line:column`` and the field path."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mlhandoff.errors import SpecError, SpecIssue
from mlhandoff.spec.metric_names import DEFAULT_THRESHOLDS, UnknownMetric, parse_metric
from mlhandoff.spec.models import FieldSpec, HandoffSpec
from mlhandoff.spec.monitoring import monitoring_issues
from mlhandoff.spec.rollout_rules import rollout_problems
from mlhandoff.spec.tasks import STANDARD_OUTPUTS

Loc = tuple[str | int, ...]


class _Marks:
    """Line/column of every key and value in a YAML document, by field path."""

    def __init__(self) -> None:
        self.keys: dict[Loc, yaml.Mark] = {}
        self.values: dict[Loc, yaml.Mark] = {}

    def find(self, loc: Loc, prefer_key: bool = False) -> yaml.Mark | None:
        """The mark of ``loc``, or of its nearest ancestor that has one."""
        for end in range(len(loc), -1, -1):
            sub = loc[:end]
            first, second = (self.keys, self.values) if prefer_key else (self.values, self.keys)
            mark = first.get(sub) or second.get(sub)
            if mark is not None:
                return mark
        return None


#: A spec is a few pages of YAML. These bound what a hostile one costs to read (every command
#: reads specs, including the frozen one inside a bundle someone sent): its size on disk, how
#: deep it nests, and how many values it holds once aliases are expanded ("billion laughs":
#: eight levels of ten aliases each are a file of a few hundred bytes holding a billion values).
MAX_SPEC_BYTES = 1 << 20
MAX_DEPTH = 100
MAX_VALUES = 1_000_000


class _TooDeep(Exception):
    """Raised inside the composer; becomes a SpecError with the file's name."""

    def __init__(self, mark: yaml.Mark) -> None:
        self.mark = mark


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML keeps the last one silently) and nesting
    deeper than ``MAX_DEPTH`` (its composer recurses once per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Mark] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            first = seen[key].line + 1
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first defined on line {first})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _check_expansion(root: yaml.Node, file: Path | None) -> None:
    """Refuse a document whose aliases expand past ``MAX_VALUES`` values or ``MAX_DEPTH`` levels.

    An alias is the anchored node itself, so sizes are computed once per node: linear in the
    text, however much the aliases would expand to.
    """
    measured: dict[int, tuple[int, int] | None] = {}  # id -> (values, depth); None: being measured

    def measure(node: yaml.Node) -> tuple[int, int]:
        key = id(node)
        if key in measured:
            known = measured[key]
            if known is None:
                raise _issue_error(file, node.start_mark, "an alias refers to the anchor it is in")
            return known
        measured[key] = None
        values, depth = 1, 0
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        for child in children:
            child_values, child_depth = measure(child)
            values, depth = values + child_values, max(depth, child_depth)
        if values > MAX_VALUES or depth + 1 > MAX_DEPTH:
            grows = f"{MAX_VALUES:,} values" if values > MAX_VALUES else f"{MAX_DEPTH} levels"
            raise _issue_error(
                file,
                node.start_mark,
                f"aliases here expand to more than {grows}; a spec needs far fewer: repeat "
                "less through anchors and aliases",
            )
        measured[key] = (values, depth + 1)
        return values, depth + 1

    measure(root)


def _issue_error(file: Path | None, mark: yaml.Mark | None, message: str) -> SpecError:
    line = mark.line + 1 if mark else None
    column = mark.column + 1 if mark else None
    return SpecError([SpecIssue(path="", message=message, file=file, line=line, column=column)])


def _read_yaml(text: str, file: Path | None) -> tuple[yaml.Node | None, Any]:
    """The composed document (for line numbers) and the data built from it."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SPEC_BYTES:
        raise _issue_error(
            file, None, f"the spec is {size:,} bytes; a spec holds at most {MAX_SPEC_BYTES:,}"
        )
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_expansion(node, file)
        return node, loader.construct_document(node)
    except _TooDeep as exc:
        raise _issue_error(
            file,
            exc.mark,
            f"nested more than {MAX_DEPTH} levels deep; a spec needs a handful: flatten it",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = f"{exc.problem or exc.context}" + (
            f" {exc.context}" if exc.problem and exc.context else ""
        )
        raise _issue_error(file, mark, f"not valid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise SpecError([SpecIssue(path="", message=f"not valid YAML: {exc}", file=file)]) from exc
    finally:
        loader.dispose()


def _collect_marks(node: yaml.Node, loc: Loc, marks: _Marks, seen: set[int]) -> None:
    marks.values[loc] = node.start_mark
    if id(node) in seen:  # an alias: what is under it is marked where its anchor is
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*loc, str(key_node.value))
            marks.keys[child] = key_node.start_mark
            _collect_marks(value_node, child, marks, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_marks(item, (*loc, index), marks, seen)


def _format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _issue(
    loc: Loc, message: str, file: Path | None, marks: _Marks, prefer_key: bool = False
) -> SpecIssue:
    mark = marks.find(loc, prefer_key=prefer_key)
    return SpecIssue(
        path=_format_loc(loc),
        message=message,
        file=file,
        line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None,
    )


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that ``loc`` points into, following dicts, lists and optionals."""
    annotation: Any = root
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return None
            annotation = field.annotation
        elif typing.get_origin(annotation) in (dict, list):
            annotation = typing.get_args(annotation)[-1]
        else:
            return None
    annotation = _unwrap(annotation)
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    if origin is typing.Annotated:
        return typing.get_args(annotation)[0]
    return annotation


def _pydantic_issues(exc: ValidationError, file: Path | None, marks: _Marks) -> Iterator[SpecIssue]:
    union_messages: dict[Loc, list[str]] = {}
    for err in exc.errors():
        loc: Loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            parent = _model_at(HandoffSpec, loc[:-1])
            known = list(parent.model_fields) if parent else []
            guess = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            hint = f"; did you mean '{guess[0]}'?" if guess else ""
            allowed = f" (allowed here: {', '.join(known)})" if known and not guess else ""
            yield _issue(
                loc, f"unknown key '{loc[-1]}'{hint}{allowed}", file, marks, prefer_key=True
            )
        elif err["type"] == "missing":
            yield _issue(loc, "required field is missing", file, marks, prefer_key=True)
        else:
            # A union (int | float, Person | None) reports once per member, under a loc that
            # ends in member tags: fold those into one message at the real YAML path.
            real = loc
            while real and real not in marks.values:
                real = real[:-1]
            got = err.get("input")
            shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
            union_messages.setdefault(real or loc, []).append(err["msg"] + shown)
    for loc, messages in union_messages.items():
        unique = list(dict.fromkeys(messages))
        yield _issue(loc, "; or ".join(unique), file, marks)


def _cross_checks(spec: HandoffSpec) -> Iterator[tuple[Loc, str]]:
    """Rules that span sections; each names the exact field to fix."""
    fields = spec.data_contract.fields
    names = list(fields)

    def unknown(name: str) -> str:
        guess = difflib.get_close_matches(name, names, n=1)
        return f"'{name}' is not a field of data_contract" + (
            f"; did you mean '{guess[0]}'?" if guess else ""
        )

    if spec.data_contract.label and spec.data_contract.label in fields:
        yield (("data_contract", "label"), "the label must not also be an input field")
    for name, f in fields.items():
        at = ("data_contract", "fields", name)
        if f.min is not None and f.max is not None and f.min > f.max:
            yield ((*at, "min"), f"min ({f.min}) is greater than max ({f.max})")
        if f.domain is not None and f.type not in ("category", "string", "int"):
            yield (
                (*at, "domain"),
                f"a domain applies to category, string or int fields, not {f.type}",
            )
        if f.timezone is not None and f.type != "timestamp":
            yield ((*at, "timezone"), "a timezone applies only to timestamp fields")
        if (f.min is not None or f.max is not None) and f.type not in ("int", "float", "array"):
            yield (at, f"min/max apply to int, float and array fields, not {f.type}")
        yield from _field_rule_checks(at, f)
    split = spec.data_contract.split
    if split is not None and split.kind != "random":
        column = fields.get(split.column or "")
        if split.column is None:
            yield (("data_contract", "split", "column"), f"a {split.kind} split names its column")
        elif column is None:
            yield (("data_contract", "split", "column"), unknown(split.column))
        elif split.kind == "time" and column.type not in ("timestamp", "date"):
            yield (
                ("data_contract", "split", "column"),
                f"a time split needs a timestamp or date field; '{split.column}' is {column.type}",
            )
    for i, feature in enumerate(spec.model.features or []):
        if feature not in fields:
            yield (("model", "features", i), unknown(feature))
    for i, pii in enumerate(spec.privacy.pii_fields):
        if pii not in fields:
            yield (("privacy", "pii_fields", i), unknown(pii))
    for i, example in enumerate(spec.api.examples):
        for key in example:
            if key not in fields:
                yield (("api", "examples", i, key), unknown(key))
    standard = STANDARD_OUTPUTS[spec.model.task]
    for name, out in spec.outputs().fields.items():
        source = out.source or name
        if source not in standard:
            yield (
                ("output_contract", "fields", name, "source" if out.source else ""),
                f"'{source}' is not an output of a {spec.model.task} model; "
                f"choose from {', '.join(standard)} (set 'source' to rename one)",
            )
    if spec.model.flavor == "python_function" and not spec.model.entrypoint:
        yield (
            ("model", "entrypoint"),
            "the python_function flavor needs entrypoint: module:function",
        )
    yield from _acceptance_checks(spec)
    yield from rollout_problems(spec)
    yield from monitoring_issues(spec)


def _acceptance_checks(spec: HandoffSpec) -> Iterator[tuple[Loc, str]]:
    """Metric names exist and fit the task; each criterion says what it requires."""

    task = spec.model.task
    for i, c in enumerate(spec.acceptance.criteria):
        at: Loc = ("acceptance", "criteria", i)
        try:
            ref = parse_metric(c.metric, task)
        except UnknownMetric as exc:
            yield ((*at, "metric"), str(exc))
            continue
        if c.threshold is None and c.min_absolute_change is None and c.min_relative_change is None:
            yield (at, "a criterion needs threshold, min_absolute_change or min_relative_change")
        if ref.fairness:
            yield ((*at, "metric"), f"{ref.name} compares slices: make it a guardrail with 'by'")
        yield from _direction_check(at, c.op, c.greater_is_better)
    for i, g in enumerate(spec.acceptance.guardrails):
        at = ("acceptance", "guardrails", i)
        try:
            ref = parse_metric(g.metric, task)
        except UnknownMetric as exc:
            yield ((*at, "metric"), str(exc))
            continue
        if ref.fairness and not g.by:
            yield ((*at, "by"), f"{ref.name} compares slices: name the slice column in 'by'")
        if g.threshold is None and ref.name not in DEFAULT_THRESHOLDS:
            yield ((*at, "threshold"), "a guardrail needs a threshold")
        yield from _direction_check(at, g.op, g.greater_is_better)
    if task == "ranking" and spec.acceptance.criteria and not spec.acceptance.query:
        yield (
            ("acceptance", "query"),
            "ranking metrics need the query-group column: set acceptance.query",
        )


def _direction_check(at: Loc, op: str | None, better: bool | None) -> Iterator[tuple[Loc, str]]:
    """Criteria and guardrails share one grammar: an op must agree with greater_is_better."""
    if op and better is not None and (op[0] == ">") != better:
        yield ((*at, "op"), f"op '{op}' contradicts greater_is_better: {better}")


def _field_rule_checks(at: Loc, f: FieldSpec) -> Iterator[tuple[Loc, str]]:
    """The data contract's per-field rules that need more than one key to judge."""
    for side in ("min", "max"):
        if getattr(f, f"{side}_exclusive") and getattr(f, side) is None:
            yield ((*at, f"{side}_exclusive"), f"{side}_exclusive needs a {side} to exclude")
    if f.min is not None and f.min == f.max and (f.min_exclusive or f.max_exclusive):
        yield ((*at, "min"), f"min = max = {f.min} with an exclusive bound admits no value")
    if f.unseen != "reject" and not f.domain:
        yield ((*at, "unseen"), "an unseen-value policy needs a domain")
    bucket = getattr(f.unseen, "bucket", None)
    if bucket is not None and f.domain and bucket not in [str(v) for v in f.domain]:
        yield ((*at, "unseen", "bucket"), f"bucket '{bucket}' must be one of the domain's values")
    text_rules = [k for k in ("pattern", "min_length", "max_length") if getattr(f, k) is not None]
    if text_rules and f.type not in ("string", "category"):
        yield ((*at, text_rules[0]), f"{text_rules[0]} applies to string and category fields")
    if f.min_length is not None and f.max_length is not None and f.min_length > f.max_length:
        yield ((*at, "min_length"), f"min_length ({f.min_length}) exceeds max_length")
    if f.pattern is not None:
        problem = _regex_problem(f.pattern)
        if problem:
            yield ((*at, "pattern"), f"invalid regular expression {f.pattern!r}: {problem}")
    if (f.type == "array") != (f.length is not None):
        yield (
            (*at, "length" if f.length is not None else "type"),
            "an array field needs length: <values per row>, and only arrays take a length",
        )
    if f.timezone is not None and _zone_problem(f.timezone):
        yield ((*at, "timezone"), f"unknown timezone '{f.timezone}'; use an IANA name like UTC")


def _regex_problem(pattern: str) -> str | None:
    """Why RE2 (the engine the validator runs) refuses ``pattern``, or None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        pc.match_substring_regex(pa.array([""]), pattern=pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        return str(exc).removeprefix("Invalid regular expression: ")
    return None


def _zone_problem(name: str) -> bool:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return True
    return False


def parse_spec(text: str, file: Path | None = None) -> HandoffSpec:
    """Parse and validate spec text; every problem found is reported at once."""
    node, data = _read_yaml(text, file)
    marks = _Marks()
    if node is not None:
        _collect_marks(node, (), marks, set())
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise SpecError(
            [
                SpecIssue(
                    path="", message=f"a spec must be a YAML mapping, got {kind}", file=file, line=1
                )
            ]
        )
    try:
        spec = HandoffSpec.model_validate(data)
    except ValidationError as exc:
        issues = list(_pydantic_issues(exc, file, marks))
        issues += _cross_issues_around(data, exc, file, marks)
        raise SpecError(_by_line(issues)) from None
    issues = [
        _issue(tuple(p for p in loc if p != ""), msg, file, marks)
        for loc, msg in _cross_checks(spec)
    ]
    if issues:
        raise SpecError(_by_line(issues))
    # One notion of PII everywhere: a field listed under privacy.pii_fields is a pii field.
    for name in spec.privacy.pii_fields:
        spec.data_contract.fields[name].pii = True
    return spec


def _cross_issues_around(
    data: dict[str, Any], exc: ValidationError, file: Path | None, marks: _Marks
) -> list[SpecIssue]:
    """The cross-section problems of the sections that did parse, so a spec's problems come in
    one report rather than in rounds: the broken sections are set aside (a broken required
    section leaves nothing to check) and the rest is checked as usual."""
    broken = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
    rest = {k: v for k, v in data.items() if k not in broken}
    try:
        partial = HandoffSpec.model_validate(rest)
    except ValidationError:
        return []
    return [
        _issue(tuple(p for p in loc if p != ""), msg, file, marks)
        for loc, msg in _cross_checks(partial)
        if str(loc[0]) not in broken
    ]


def _by_line(issues: list[SpecIssue]) -> list[SpecIssue]:
    return sorted(issues, key=lambda i: (i.line if i.line is not None else 0, i.column or 0))


def load_spec(path: str | Path) -> HandoffSpec:
    """Read ``handoff.yaml`` from disk; a missing or unreadable file is a SpecError naming it."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SPEC_BYTES + 1)  # never more: the file may be huge or endless
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise SpecError([SpecIssue(path="", message="spec file not found", file=path)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(
            [SpecIssue(path="", message=f"cannot read spec: {exc}", file=path)]
        ) from exc
    if len(raw) > MAX_SPEC_BYTES:
        raise _issue_error(
            path, None, f"the spec is larger than {MAX_SPEC_BYTES:,} bytes, the most a spec holds"
        )
    return parse_spec(text, file=path)


def dump_spec(spec: HandoffSpec) -> str:
    """YAML text of a spec (defaults included), as frozen into bundles."""
    data = spec.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema of handoff.yaml, for editor completion and CI linting."""
    schema = HandoffSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mlhandoff handoff.yaml"
    return schema
