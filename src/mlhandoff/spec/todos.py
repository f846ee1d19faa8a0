"""Where a spec still says TODO: every unfilled human field with its line, for ``mlhandoff check``.

A TODO is a string value starting with ``TODO``, or an empty value (``null``, ``[]``) whose
line carries a ``# TODO`` comment, as ``mlhandoff init`` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from mlhandoff.spec.models import is_todo

#: Nodes visited at most: aliases are walked once (no exponential expansion), and a spec that
#: parsed has far fewer.
_MAX_NODES = 100_000


@dataclass(frozen=True)
class Todo:
    path: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.line}: {self.path}: {self.text}"


def find_todos(text: str) -> list[Todo]:
    """Every TODO in spec text, in file order. The text must already have parsed as a spec."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    lines = text.splitlines()
    found: list[Todo] = []
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    while stack and len(seen) < _MAX_NODES:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        line = node.start_mark.line
        source = lines[line] if line < len(lines) else ""
        if isinstance(node, yaml.MappingNode):
            if not node.value and "TODO" in source:
                found.append(Todo(path, line + 1, _comment(source)))
            for key, value in reversed(node.value):
                stack.append((value, f"{path}.{key.value}" if path else str(key.value)))
        elif isinstance(node, yaml.SequenceNode):
            if not node.value and "# TODO" in source:
                found.append(Todo(path, line + 1, _comment(source)))
            for i, item in reversed(list(enumerate(node.value))):
                stack.append((item, f"{path}[{i}]"))
        elif isinstance(node, yaml.ScalarNode):
            if node.tag.endswith(":str") and is_todo(node.value) and node.value.strip():
                found.append(Todo(path, line + 1, node.value.strip()))
            elif node.tag.endswith(":null") and "# TODO" in source:
                found.append(Todo(path, line + 1, _comment(source)))
    return sorted(found, key=lambda t: t.line)


def find_todos_in(path: Path) -> list[Todo]:
    return find_todos(path.read_text(encoding="utf-8"))


def _comment(source: str) -> str:
    return source[source.index("TODO") :].strip()
