"""Building blocks for hostile inputs: each payload that would run writes a marker file."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import mlhandoff

#: What puts this checkout's mlhandoff first on a child interpreter's path.
_SRC = str(Path(mlhandoff.__file__).resolve().parents[1])


class Call:
    """Pickles as ``fn(*args)``: what an attacker's ``__reduce__`` looks like."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.fn, self.args


def touch_code(marker: Path) -> str:
    """Python source that creates ``marker``."""
    return f"open({str(marker)!r}, 'w').close()"


def touch_command(marker: Path) -> str:
    """A shell command that creates ``marker``."""
    return f'{shlex.quote(sys.executable)} -c "{touch_code(marker)}"'


def short_unicode(s: str) -> bytes:
    """The SHORT_BINUNICODE opcode for ``s``."""
    data = s.encode()
    return b"\x8c" + bytes([len(data)]) + data


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child interpreter, so a crash or a hang cannot take the test run down."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def _skops_node(loader: str, module: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"__class__": name, "__module__": module, "__loader__": loader, **extra}


def write_skops_call(path: Path, target: str, *args: str, functions: tuple[str, ...] = ()) -> Path:
    """A ``.skops`` file whose loading calls ``target(*args)`` (skops' reduce-style node), as
    ``zoneinfo.ZoneInfo("UTC")`` is saved; ``functions`` adds references to more functions."""
    module, _, name = target.rpartition(".")
    items = [
        _skops_node("JsonNode", "builtins", "str", content=json.dumps(a), is_json=True)
        for a in args
    ]
    items += [_skops_node("FunctionNode", *f.rsplit(".", 1)) for f in functions]
    schema = _skops_node(
        "ConstructorFromReduceNode",
        module,
        name,
        content=_skops_node("TupleNode", "builtins", "tuple", content=items),
        protocol=2,
        _skops_version="0.16.0",
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return path
