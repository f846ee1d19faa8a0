"""Memory corruption through allowed numpy globals: refused cleanly, never a crashed process.

Every stream here names only allowlisted globals (numpy.dtype, _reconstruct, scalar,
_frombuffer, ndarray, joblib's array wrapper); what it forges is the *state* numpy trusts. On
code without the checks, loading (and reading what loaded) dies with SIGSEGV or reads freed
memory, so each load runs in a child process and the test asserts on how the child ended.
"""

from __future__ import annotations

import pickle
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hostile import Call, run_python
from joblib.numpy_pickle import NumpyArrayWrapper
from numpy._core.multiarray import _reconstruct, scalar
from numpy._core.numeric import _frombuffer

#: Loads a file through the restricted unpickler, then reads what it got (repr touches every
#: element, which is what dereferences forged object pointers).
_LOAD = """
import sys
from pathlib import Path
from mlhandoff.errors import UnsafeModelError
from mlhandoff.flavors import _safe_pickle
try:
    loaded = _safe_pickle.load(Path(sys.argv[1]))
except UnsafeModelError as exc:
    print("refused:", exc)
else:
    print("loaded:", repr(loaded))
"""

#: The state numpy writes for dtype('O'), with flags=0 instead of 63: "no objects in here".
_OBJECT_WITHOUT_FLAGS = (3, "|", None, None, None, -1, -1, 0)
_POINTER = b"\x41" * 8  # what numpy would dereference as a PyObject*


class _Dtype:
    """Pickles as ``numpy.dtype(base, False, True)`` followed by BUILD with ``state``."""

    def __init__(self, base: str, state: tuple[Any, ...]) -> None:
        self.base, self.state = base, state

    def __reduce__(self) -> tuple[Any, ...]:
        return np.dtype, (self.base, False, True), self.state


class _SameDtype:
    """``numpy.dtype(dt, False, False)`` returns ``dt`` itself: a second BUILD on it."""

    def __init__(self, dtype: _Dtype, state: tuple[Any, ...]) -> None:
        self.dtype, self.state = dtype, state

    def __reduce__(self) -> tuple[Any, ...]:
        return np.dtype, (self.dtype, False, False), self.state


class _RawArray:
    """Pickles as numpy does: ``_reconstruct`` + BUILD with raw bytes for ``dtype``."""

    def __init__(self, dtype: object, raw: bytes) -> None:
        self.dtype, self.raw = dtype, raw

    def __reduce__(self) -> tuple[Any, ...]:
        return _reconstruct, (np.ndarray, (0,), b"b"), (1, (1,), self.dtype, False, self.raw)


def _reconstruct_object_pointer() -> bytes:
    return pickle.dumps(_RawArray(_Dtype("O8", _OBJECT_WITHOUT_FLAGS), _POINTER), protocol=2)


def _joblib_raw_object_read() -> bytes:
    """A joblib stream whose array header names the forged dtype, followed by raw bytes."""
    wrapper = NumpyArrayWrapper.__new__(NumpyArrayWrapper)
    wrapper.__dict__.update(
        subclass=np.ndarray,
        shape=(1,),
        order="C",
        dtype=_Dtype("O8", _OBJECT_WITHOUT_FLAGS),
        allow_mmap=False,
        numpy_array_alignment_bytes=None,
    )
    stream = pickle.dumps(wrapper, protocol=4)
    return stream[:-1] + _POINTER + b"."  # joblib reads the array right after its BUILD


def _scalar_object_pointer() -> bytes:
    return pickle.dumps(Call(scalar, _Dtype("O8", _OBJECT_WITHOUT_FLAGS), _POINTER))


def _frombuffer_object_pointer() -> bytes:
    dtype = _Dtype("O8", _OBJECT_WITHOUT_FLAGS)
    return pickle.dumps(Call(_frombuffer, _POINTER, dtype, (1,), "C"))


def _float_claiming_objects() -> bytes:
    return pickle.dumps(_RawArray(_Dtype("f8", (3, "<", None, None, None, -1, -1, 63)), _POINTER))


def _hidden_object_field() -> bytes:
    """``names`` lists one float field; ``fields`` also holds an object field over its bytes."""
    fields = {"a": (np.dtype("f8"), 0), "b": (np.dtype("O"), 0)}
    state = (3, "|", None, ("a",), fields, 8, 1, 16)
    return pickle.dumps(_RawArray(_Dtype("V8", state), _POINTER))


def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def _f8() -> bytes:
    return _global("numpy", "dtype") + b"X\x02\x00\x00\x00f8\x89\x88\x87R"


def _array_rebuilt_under_a_view() -> bytes:
    """An array with data, a view of its buffer, then a second BUILD that frees that buffer."""
    shape = b"M\x00\x10\x85"  # (4096,)
    return (
        b"\x80\x03("
        # a = _reconstruct(ndarray, (4096,), "f8"); memo[0] = a
        + _global("numpy.core.multiarray", "_reconstruct")
        + _global("numpy", "ndarray")
        + shape
        + b"X\x02\x00\x00\x00f8\x87Rq\x00"
        # view = ndarray((4096,), dtype("f8"), a): its data is a's buffer
        + _global("numpy", "ndarray")
        + shape
        + _f8()
        + b"h\x00\x87R"
        # BUILD a with one element: numpy frees the 32 KiB buffer the view still points into
        + b"h\x00(K\x01K\x01\x85"
        + _f8()
        + b"\x89C\x08"
        + _POINTER
        + b"tb0"
        + b"t."
    )


_REFUSED: dict[str, tuple[Callable[[], bytes], str]] = {
    "object dtype with flags=0, _reconstruct + BUILD": (_reconstruct_object_pointer, "dtype"),
    "object dtype with flags=0, joblib raw array read": (_joblib_raw_object_read, "dtype"),
    "object dtype with flags=0, scalar": (_scalar_object_pointer, "dtype"),
    "object dtype with flags=0, _frombuffer": (_frombuffer_object_pointer, "dtype"),
    "float dtype claiming objects": (_float_claiming_objects, "dtype"),
    "object field hidden from names": (_hidden_object_field, "dtype"),
    "array rebuilt under a view": (_array_rebuilt_under_a_view, "holds data"),
}


def _load_in_child(path: Path) -> str:
    done = run_python(_LOAD, str(path))
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        pytest.fail(f"loading {path.name} killed the process with {name}: {done.stderr[-1500:]}")
    assert done.returncode == 0, done.stderr[-1500:]
    return done.stdout


@pytest.mark.parametrize("case", list(_REFUSED))
def test_forged_numpy_state_is_refused(tmp_path: Path, case: str) -> None:
    stream, why = _REFUSED[case]
    path = tmp_path / "model.joblib"
    path.write_bytes(stream())
    out = _load_in_child(path)
    assert out.startswith("refused:"), out
    assert "model.joblib" in out and why in out


def test_dtype_changed_after_use_cannot_reach_the_array(tmp_path: Path) -> None:
    """A dtype an array already uses is BUILT again into an object layout (a consistent one):
    the array keeps the layout it was built with, so its bytes are never read as pointers."""
    void = _Dtype("V8", (3, "|", None, None, None, 8, 1, 0))
    object_layout = (3, "|", None, ("a",), {"a": (np.dtype("O"), 0)}, 8, 1, 27)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps((_RawArray(void, _POINTER), _SameDtype(void, object_layout))))
    out = _load_in_child(path)
    assert out.startswith("loaded:"), out
    assert "dtype='|V8'), dtype([('a', 'O')]))" in out


def test_the_stock_unpickler_crashes_on_them(tmp_path: Path) -> None:
    """Control: without the checks these streams kill the process, so the refusals matter."""
    path = tmp_path / "model.pkl"
    path.write_bytes(_reconstruct_object_pointer())
    stock = "import pickle, sys; print(repr(pickle.load(open(sys.argv[1], 'rb'))))"
    assert run_python(stock, str(path)).returncode < 0
