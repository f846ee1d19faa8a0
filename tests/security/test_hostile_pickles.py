"""Hostile pickle and joblib files: the restricted unpickler refuses them before they run."""

from __future__ import annotations

import builtins
import os
import pickle
import struct
import subprocess
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from hostile import Call, short_unicode, touch_code, touch_command
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

from mlhandoff.errors import UnsafeModelError
from mlhandoff.flavors import _safe_pickle as safe_pickle


def _payloads(marker: Path) -> dict[str, Any]:
    code = touch_code(marker)
    nested = LogisticRegression()
    nested.surprise = Call(os.system, touch_command(marker))  # inside an otherwise valid estimator
    return {
        "os.system": Call(os.system, touch_command(marker)),
        "subprocess.call": Call(subprocess.call, ["touch", str(marker)]),
        "subprocess.Popen": Call(subprocess.Popen, ["touch", str(marker)]),
        "builtins.eval": Call(builtins.eval, code),
        "builtins.exec": Call(builtins.exec, code),
        "nested in sklearn": nested,
        "inside a list": [1, 2, Call(os.system, touch_command(marker))],
    }


def _handwritten(marker: Path) -> dict[str, bytes]:
    """Streams no pickler would write from a normal object: they reach for code directly."""
    cmd = touch_command(marker).encode()
    getattr_trick = (
        b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(Vos\ntRVsystem\ntR(V" + cmd + b"\ntR."
    )
    stack_global = (
        b"\x80\x04"
        + short_unicode("posix")
        + short_unicode("system")
        + b"\x93"  # STACK_GLOBAL
        + b"X"
        + struct.pack("<I", len(cmd))
        + cmd
        + b"\x85R."  # TUPLE1, REDUCE, STOP
    )
    # Dotted-name traversal: the stock unpickler walks sklearn -> sklearn.os -> os.system.
    dotted = (
        b"\x80\x04"
        + short_unicode("sklearn")
        + short_unicode("os.system")
        + b"\x93X"
        + struct.pack("<I", len(cmd))
        + cmd
        + b"\x85R."
    )
    return {"getattr trick": getattr_trick, "STACK_GLOBAL": stack_global, "dotted name": dotted}


# --- hostile files --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["os.system", "getattr trick", "STACK_GLOBAL", "dotted name"])
def test_payloads_are_real(marker: Path, kind: str) -> None:
    """Control: the stock unpickler does run them, so the refusals below mean something."""
    streams = _handwritten(marker)
    stream = streams[kind] if kind in streams else pickle.dumps(_payloads(marker)[kind])
    pickle.loads(stream)
    assert marker.exists()


@pytest.mark.parametrize(
    "kind",
    [
        "os.system",
        "subprocess.call",
        "subprocess.Popen",
        "builtins.eval",
        "builtins.exec",
        "nested in sklearn",
        "inside a list",
    ],
)
@pytest.mark.parametrize("writer", ["pickle", "joblib", "joblib-compressed"])
def test_hostile_pickles_are_refused(tmp_path: Path, marker: Path, kind: str, writer: str) -> None:
    payload = _payloads(marker)[kind]
    path = tmp_path / ("model.pkl" if writer == "pickle" else "model.joblib")
    if writer == "pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        joblib.dump(payload, path, compress=3 if writer == "joblib-compressed" else 0)
    with pytest.raises(UnsafeModelError) as info:
        safe_pickle.load(path)
    assert not marker.exists()
    assert "refused" in str(info.value)


@pytest.mark.parametrize("kind", ["getattr trick", "STACK_GLOBAL", "dotted name"])
def test_handwritten_streams_are_refused(tmp_path: Path, marker: Path, kind: str) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(_handwritten(marker)[kind])
    with pytest.raises(UnsafeModelError):
        safe_pickle.load(path)
    with pytest.raises(UnsafeModelError):
        safe_pickle.loads(path.read_bytes())
    assert not marker.exists()


def test_refusal_names_the_global(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_payloads(marker)["subprocess.call"]))
    with pytest.raises(UnsafeModelError, match=r"subprocess\.call"):
        safe_pickle.load(path)


def test_object_array_in_joblib_is_gated(tmp_path: Path, marker: Path) -> None:
    """joblib writes object arrays as a nested pickle stream; that stream is gated too."""
    array = np.array([Call(os.system, touch_command(marker)), "x"], dtype=object)
    path = tmp_path / "model.joblib"
    joblib.dump({"weights": array}, path)
    with pytest.raises(UnsafeModelError, match="system"):
        safe_pickle.load(path)
    assert not marker.exists()


def test_trusting_os_system_does_not_unlock_it(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_payloads(marker)["os.system"]))
    with pytest.raises(UnsafeModelError, match="never trusted"):
        safe_pickle.load(path, trusted_types=[f"{os.system.__module__}.system"])
    assert not marker.exists()


def test_build_on_a_class_is_refused() -> None:
    """BUILD on an allowed class would monkeypatch it for the whole process."""
    stream = b"csklearn.base\nBaseEstimator\n}Vfit\nNsb."
    with pytest.raises(UnsafeModelError, match="set attributes"):
        safe_pickle.loads(stream)
    assert BaseEstimator.__dict__.get("fit") is None


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("sklearn.utils._testing", "TempMemmap"),
        ("sklearn.datasets", "load_iris"),
        ("sklearn", "datasets"),
        ("sklearn.utils.validation", "check_array"),
        ("numpy", "memmap"),
        ("numpy", "load"),
        ("numpy", "f2py"),
        ("numpy.testing", "assert_equal"),
        ("joblib", "load"),
        ("functools", "partial"),
        ("builtins", "type"),
    ],
)
def test_globals_outside_the_allowlist(module: str, name: str) -> None:
    stream = b"\x80\x04" + short_unicode(module) + short_unicode(name) + b"\x93."
    with pytest.raises(UnsafeModelError, match=rf"{module}\.{name}"):
        safe_pickle.loads(stream)


def test_allowlist_has_no_code_runners() -> None:
    dangerous = {"builtins.eval", "builtins.exec", "builtins.getattr", "builtins.__import__"}
    assert not dangerous & safe_pickle.ALLOWED_GLOBALS
    roots = {g.split(".", 1)[0] for g in safe_pickle.ALLOWED_GLOBALS}
    assert roots <= {"numpy", "copyreg", "_codecs", "collections", "builtins"}
