"""The numpy state a pickle stream may set without corrupting memory.

numpy believes a dtype's pickled state: a state that claims an object dtype with ``flags=0``
makes numpy copy file bytes into what it then reads as object pointers (a crash, or code
execution given an address leak). And ``__setstate__`` changes an object in place: a dtype
changed after an array was built with it, or an array rebuilt while a view still points at its
old buffer, reinterprets or frees memory that others use. So:

- a dtype's state is applied to a private copy, which is refused unless numpy computes the same
  layout (flags, size, alignment, fields) when it builds that dtype from its parts; the copy
  takes the original's place, so nothing that already holds the original sees it change;
- an array receives state only while it holds no data (as ``_reconstruct`` leaves it).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def dtype_with_state(target: np.dtype, state: object) -> np.dtype:
    """A new dtype: ``target`` with ``state`` applied; ValueError if the state lies about it."""
    built: Any = np.dtype(target.str, False, True)  # from a string, copy=True: always a new one
    built.__setstate__(state)
    problem = dtype_problem(built)
    if problem:
        raise ValueError(problem)
    return built


def dtype_problem(dtype: np.dtype) -> str | None:
    """Why ``dtype``'s recorded layout differs from the one numpy computes from its parts."""
    try:
        expected = _from_parts(dtype)
    except (TypeError, ValueError) as exc:
        return f"its layout is impossible ({exc})"
    got, want = _layout(dtype), _layout(expected)
    if got != want:
        differ = ", ".join(
            f"{k}={got[k]!r} (numpy computes {want[k]!r})" for k in got if got[k] != want[k]
        )
        return f"its pickled state does not match the {expected} it describes: {differ}"
    return None


def array_state_problem(array: np.ndarray) -> str | None:
    """Why ``array`` may not receive state: rebuilding it would free a buffer views can hold."""
    if array.nbytes:
        return "an array that already holds data would be rebuilt"
    return None


def _from_parts(dtype: np.dtype) -> np.dtype:
    # Field and subarray dtypes come from the same stream, so they were checked when built.
    if dtype.subdtype is not None:
        return np.dtype(dtype.subdtype)
    if dtype.names is not None:
        fields: Any = dtype.fields
        spec: Any = {
            "names": list(dtype.names),
            "formats": [fields[n][0] for n in dtype.names],
            "offsets": [fields[n][1] for n in dtype.names],
            "titles": [fields[n][2] if len(fields[n]) > 2 else None for n in dtype.names],
            "itemsize": dtype.itemsize,
        }
        return np.dtype(spec, align=dtype.isalignedstruct)
    return np.dtype(dtype.str)


def _layout(dtype: np.dtype) -> dict[str, object]:
    return {
        "type": type(dtype).__name__,
        "flags": dtype.flags,
        "itemsize": dtype.itemsize,
        "alignment": dtype.alignment,
        "names": dtype.names,
        "fields": dtype.fields,
        "subdtype": dtype.subdtype,
    }
