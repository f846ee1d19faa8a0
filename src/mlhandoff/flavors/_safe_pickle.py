"""A restricted unpickler for scikit-learn models saved with pickle or joblib.

Unpickling runs whatever callables the file names, so the only safe gate is ``find_class``:
every global the stream asks for is looked up here *before* anything is built, and only an
allowlist resolves. Anything else raises :class:`UnsafeModelError` naming ``module.name``.

What resolves:

(a) ``ALLOWED_GLOBALS``: the numpy helpers that rebuild arrays, dtypes, scalars and random generators,
    ``copyreg._reconstructor`` (protocol < 2 objects), ``_codecs.encode`` (bytes in protocol 2)
    and a few inert builtins (containers, ``slice``, ``complex`` ...) plus ``OrderedDict``.
(b) by rule, only after the module *name* is known to be under an allowed prefix (importing a
    module is itself code execution, so nothing else is imported): classes defined in
    ``sklearn.*`` (not its test helpers, datasets, externals or parallel machinery) and
    scikit-learn's Cython unpickle helpers (``newObj``, ``__pyx_unpickle_*``), which only
    allocate instances of a class the stream already had to name; scipy.sparse matrix/array
    classes; numpy scalar and dtype classes (``numpy.float64``, ``numpy.dtypes.Float64DType``).
(c) any ``module.name`` the spec lists under ``security.trusted_types``, except the names
    :mod:`mlhandoff.flavors.trust` never trusts (they run code, open files or look names up),
    judged by the name written and by the real name of what it resolves to.

Dotted names (``Outer.attr``) are refused unless explicitly trusted: the stock unpickler walks
them with ``getattr``, which reaches any module an allowed one imports. ``BUILD`` on a class,
module or function is refused too, so a stream cannot monkeypatch an allowed class. numpy
trusts the state it is given, so ``BUILD`` on a dtype or an array goes through
``_numpy_state``: a dtype whose state disagrees with its layout (an object dtype claiming it
holds no objects turns file bytes into pointers) or an array rebuilt under a view is refused.

A plain function (``functools.partial``, ``numpy.log1p`` in a ``FunctionTransformer`` ...) is
never allowed by rule; list it under ``security.trusted_types`` after reviewing it.

This does not make a hostile file harmless: allowed code can still be fed odd state (a tree
with out-of-range node indices may crash the process). It is one layer; the bundle's hash and
signature checks come first.
"""

from __future__ import annotations

import _compat_pickle
import contextlib
import importlib
import io
import pickle
import re
import types
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np
from joblib import numpy_pickle, numpy_pickle_utils

from mlhandoff.errors import HandoffError, ModelLoadError, UnsafeModelError
from mlhandoff.flavors import _numpy_state, trust

#: Globals allowed whatever the spec says: what numpy and the standard library need to rebuild
#: arrays, scalars, dtypes and random generators, plus inert builtin types.
ALLOWED_GLOBALS: frozenset[str] = frozenset(
    {
        # numpy arrays, scalars, dtypes (numpy 1.x names are mapped to numpy._core first)
        "numpy.ndarray",
        "numpy.dtype",
        "numpy._core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar",
        "numpy._core.numeric._frombuffer",
        # numpy random state (RandomState, Generator, bit generators, SeedSequence)
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
        "numpy.random._mt19937.MT19937",
        "numpy.random._pcg64.PCG64",
        "numpy.random._pcg64.PCG64DXSM",
        "numpy.random._philox.Philox",
        "numpy.random._sfc64.SFC64",
        "numpy.random.bit_generator.SeedSequence",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
        # standard library
        "copyreg._reconstructor",
        "_codecs.encode",
        "collections.OrderedDict",
        "builtins.object",
        "builtins.slice",
        "builtins.range",
        "builtins.set",
        "builtins.frozenset",
        "builtins.complex",
        "builtins.bytearray",
        "builtins.bytes",
        "builtins.list",
        "builtins.tuple",
        "builtins.dict",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
    }
)

#: Only for joblib streams: the placeholder joblib writes before each array's raw bytes.
_JOBLIB_GLOBALS = frozenset({"joblib.numpy_pickle.NumpyArrayWrapper"})

_SKLEARN_EXCLUDED = (
    "sklearn.utils._testing",
    "sklearn.utils.parallel",
    "sklearn.utils._joblib",
    "sklearn.utils._show_versions",
    "sklearn.datasets",
    "sklearn.externals",
    "sklearn.experimental",
    "sklearn._build_utils",
    "sklearn.__check_build",
    "sklearn.conftest",
)
_TEST_SEGMENTS = frozenset({"tests", "testing", "_testing", "conftest"})
_SKLEARN_HELPERS = re.compile(r"newObj|__pyx_unpickle_\w+")
_NUMPY_CLASS_MODULES = frozenset({"numpy", "numpy.dtypes"})
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_TRUST_HINT = (
    "if you have reviewed the model's source and trust it, add '{name}' under "
    "security.trusted_types in handoff.yaml"
)


def load(path: Path, trusted_types: Iterable[str] = ()) -> object:
    """Unpickle a pickle or joblib file (any joblib compression) through the allowlist."""
    gate = _Gate(trusted_types, path, joblib=True)
    try:
        with open(path, "rb") as raw:
            if numpy_pickle_utils._detect_compressor(raw) == "compat":
                raise ModelLoadError(
                    f"{path} was written by joblib < 0.10, whose format stores arrays in "
                    "companion files; load it with a trusted old environment and save it again"
                )
            with _decompressed(raw, str(path)) as stream:
                return _JoblibUnpickler(str(path), stream, gate).load()
    except HandoffError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"{path} cannot be read as a pickle/joblib file ({type(exc).__name__}: {exc}); "
            "it may be truncated or not a model file"
        ) from exc


def untrusted_globals(path: Path) -> list[str]:
    """The globals a pickle/joblib file needs that are not trusted by default, for review (what
    skops's ``get_untrusted_types`` gives init for a .skops file). The file is loaded with a
    stand-in for each such global: nothing off the allowlist is imported or called, and a name
    that is never trusted is still refused. If the stand-ins stop the load early, the names
    found so far are returned (pack refuses the rest by name)."""
    found: list[str] = []
    gate = _Gate((), path, joblib=True, collect=found)
    try:
        with open(path, "rb") as raw, _decompressed(raw, str(path)) as stream:
            _JoblibUnpickler(str(path), stream, gate).load()
    except HandoffError:
        raise
    except Exception as exc:
        if not found:  # not a stand-in's doing: the file itself cannot be read
            raise ModelLoadError(
                f"{path} cannot be read as a pickle/joblib file ({type(exc).__name__}: "
                f"{exc}); it may be truncated or not a model file"
            ) from exc
    return list(dict.fromkeys(found))


class _StandIn:
    """Takes the place of an untrusted global while init lists them: accepts any call and state."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass


def loads(data: bytes, trusted_types: Iterable[str] = (), source: str = "<bytes>") -> object:
    """Unpickle a plain pickle stream held in memory through the allowlist."""
    gate = _Gate(trusted_types, source, joblib=False)
    try:
        return _Unpickler(io.BytesIO(data), gate).load()
    except HandoffError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"{source} cannot be read as a pickle ({type(exc).__name__}: {exc})"
        ) from exc


@contextlib.contextmanager
def _decompressed(raw: IO[bytes], filename: str) -> Iterator[IO[bytes]]:
    # joblib renamed its private opener (1.6: _validate_fileobject_and_memmap, yielding a pair).
    opener: Callable[..., Any] | None = getattr(numpy_pickle, "_read_fileobject", None)
    if opener is None:
        opener = numpy_pickle_utils._validate_fileobject_and_memmap
    with opener(raw, filename, None) as opened:
        yield opened[0] if isinstance(opened, tuple) else opened


class _Gate:
    """The allowlist: resolves one (module, name) or refuses it."""

    def __init__(
        self,
        trusted: Iterable[str],
        source: object,
        *,
        joblib: bool,
        collect: list[str] | None = None,
    ) -> None:
        self.trusted = frozenset(trusted)
        self.source = source
        self.explicit = ALLOWED_GLOBALS | _JOBLIB_GLOBALS if joblib else ALLOWED_GLOBALS
        self.collect = collect  # listing for review: stand-ins instead of refusals

    def untrusted(self, module: str, name: str, why: str) -> Any:
        """Refuse a global the spec could trust, or, when listing, note it and stand in."""
        if self.collect is None:
            self.refuse(module, name, why)
        self.collect.append(f"{module}.{name}")
        return type(name.rsplit(".", 1)[-1], (_StandIn,), {})

    def refuse(self, module: str, name: str, why: str, *, trustable: bool = True) -> NoReturn:
        full = f"{module}.{name}"
        hint = "; " + _TRUST_HINT.format(name=full) if trustable else ""
        raise UnsafeModelError(f"{self.source} refers to {full!r}, refused: {why}{hint}")

    def resolve(self, module: str, name: str, proto: int) -> Any:
        if proto < 3:  # protocol 2 files name Python 2 modules (__builtin__, copy_reg)
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        if not (_DOTTED.fullmatch(module) and _DOTTED.fullmatch(name)):
            self.refuse(module, name, "not a valid Python name", trustable=False)
        if module == "numpy.core" or module.startswith("numpy.core."):
            module = "numpy._core" + module[len("numpy.core") :]  # numpy 1.x files
        full = f"{module}.{name}"
        if trust.never_trusted(full):
            self.refuse(module, name, trust.WHY, trustable=False)
        if full in self.explicit:
            return self._import(module, name)
        if full in self.trusted:
            obj = self._import(module, name)
            if trust.never_trusted_object(obj):
                why = f"it is {trust.real_name(obj)}: {trust.WHY}"
                self.refuse(module, name, why, trustable=False)
            return obj
        if not _IDENTIFIER.fullmatch(name):
            return self.untrusted(module, name, "dotted attribute lookups are not allowed")
        found = self._by_rule(module, name)
        if found is None:
            return self.untrusted(module, name, "it is not on the allowlist")
        return found

    def _by_rule(self, module: str, name: str) -> Any:
        root = module.split(".", 1)[0]
        if root == "sklearn" and _sklearn_module_ok(module):
            obj = self._defined(module, name)
            defined_in = getattr(obj, "__module__", None)
            if not (isinstance(defined_in, str) and _sklearn_module_ok(defined_in)):
                return None  # re-exported from elsewhere: judge it under its real name
            if isinstance(obj, type) or (_SKLEARN_HELPERS.fullmatch(name) and callable(obj)):
                return obj
            return None
        if module == "scipy.sparse" or module.startswith("scipy.sparse."):
            if _has_test_segment(module):
                return None
            sparse = importlib.import_module("scipy.sparse")
            obj = self._defined(module, name)
            if isinstance(obj, type) and issubclass(obj, sparse.spmatrix | sparse.sparray):
                return obj
            return None
        if module in _NUMPY_CLASS_MODULES:
            obj = self._defined(module, name)
            if isinstance(obj, type) and issubclass(obj, np.generic | np.dtype):
                return obj
        return None

    def _defined(self, module: str, name: str) -> Any:
        """``name`` from the module's namespace: never via a module ``__getattr__``, which
        numpy and sklearn use to import submodules lazily (numpy.f2py, sklearn.datasets)."""
        try:
            return vars(importlib.import_module(module)).get(name)
        except ImportError as exc:
            raise ModelLoadError(
                f"{self.source} needs the module {module}, which this environment does not have"
            ) from exc

    def _import(self, module: str, name: str) -> Any:
        try:
            obj: Any = importlib.import_module(module)
            for part in name.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ModelLoadError(
                f"{self.source} needs {module}.{name}, which this environment does not have; "
                "was the model saved with other library versions than the ones installed?"
            ) from exc
        return obj


def _has_test_segment(module: str) -> bool:
    return any(part in _TEST_SEGMENTS for part in module.split("."))


def _sklearn_module_ok(module: str) -> bool:
    if module != "sklearn" and not module.startswith("sklearn."):
        return False
    if _has_test_segment(module):
        return False
    return not any(module == ex or module.startswith(ex + ".") for ex in _SKLEARN_EXCLUDED)


def _guard_build(stack: list[Any]) -> None:
    """Refuse BUILD (set state) on classes, modules and functions: that would patch them."""
    if len(stack) >= 2:
        target = stack[-2]
        if isinstance(
            target,
            type | types.ModuleType | types.FunctionType | types.BuiltinFunctionType,
        ):
            raise UnsafeModelError(
                f"the pickle tries to set attributes on {target!r}; refused (only objects a "
                "model builds may receive state)"
            )


class _Memo(dict[Any, Any]):
    """The unpickler's memo, remembering where each dtype is kept so BUILD can swap it."""

    def __init__(self) -> None:
        super().__init__()
        self._dtype_keys: dict[int, list[Any]] = {}

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, np.dtype):
            self._dtype_keys.setdefault(id(value), []).append(key)
        super().__setitem__(key, value)

    def swap(self, old: np.dtype, new: np.dtype) -> None:
        for key in self._dtype_keys.pop(id(old), []):
            if self.get(key) is old:
                self[key] = new


def _build(unpickler: Any, source: object) -> None:
    """BUILD with the guards: nothing patched, dtypes checked and copied, arrays built once."""
    stack = unpickler.stack
    target = stack[-2] if len(stack) >= 2 else None
    if isinstance(target, np.dtype):
        try:
            built = _numpy_state.dtype_with_state(target, stack[-1])
        except ValueError as exc:
            raise UnsafeModelError(f"{source}: a numpy dtype is refused: {exc}") from exc
        stack.pop()
        stack[-1] = built
        unpickler.memo.swap(target, built)
        return
    if isinstance(target, np.ndarray):
        problem = _numpy_state.array_state_problem(target)
        if problem:
            raise UnsafeModelError(f"{source}: refused: {problem}")
    _guard_build(stack)
    _PyUnpickler.load_build(unpickler)  # not joblib's: its array wrapper is handled below


# The pure-Python unpickler (joblib's base too): its opcode table can be overridden, the C one's
# cannot, and BUILD needs a guard.
_PyUnpickler: Any = pickle._Unpickler
_NumpyUnpickler: Any = numpy_pickle.NumpyUnpickler


class _Unpickler(_PyUnpickler):
    """Plain pickle streams (and joblib's nested object-array streams)."""

    dispatch = _PyUnpickler.dispatch.copy()

    def __init__(self, file: IO[bytes], gate: _Gate) -> None:
        super().__init__(file)
        self._gate = gate
        self.memo = _Memo()

    def find_class(self, module: str, name: str) -> Any:
        return self._gate.resolve(module, name, self.proto)

    def _load_build(self) -> None:
        _build(self, self._gate.source)

    dispatch[pickle.BUILD[0]] = _load_build


class _JoblibUnpickler(_NumpyUnpickler):
    """joblib streams: pickle opcodes with raw array bytes after each NumpyArrayWrapper."""

    dispatch = _NumpyUnpickler.dispatch.copy()

    def __init__(self, filename: str, file_handle: IO[bytes], gate: _Gate) -> None:
        super().__init__(filename, file_handle, ensure_native_byte_order=True, mmap_mode=None)
        self._gate = gate
        self.memo = _Memo()

    def find_class(self, module: str, name: str) -> Any:
        return self._gate.resolve(module, name, self.proto)

    def _load_build(self) -> None:
        _build(self, self._gate.source)
        # joblib's pre-0.10 NDArrayWrapper never gets here: it is not on the allowlist.
        if isinstance(self.stack[-1], numpy_pickle.NumpyArrayWrapper):
            wrapper = self.stack.pop()
            self.stack.append(self._read_array(wrapper))

    def _read_array(self, wrapper: Any) -> np.ndarray:
        dtype = wrapper.dtype
        if not isinstance(dtype, np.dtype):
            raise UnsafeModelError(f"{self._gate.source}: malformed joblib array header")
        problem = _numpy_state.dtype_problem(dtype)
        if problem:  # hasobject is only true to the layout once the layout is checked
            raise UnsafeModelError(f"{self._gate.source}: a joblib array is refused: {problem}")
        if dtype.hasobject:
            # Object arrays are a nested pickle stream, never raw bytes: gate it too (joblib
            # < 1.6 did not).
            nested = _Unpickler(self.file_handle, self._gate).load()
            if not isinstance(nested, np.ndarray):
                raise UnsafeModelError(f"{self._gate.source}: malformed joblib object array")
            return nested
        array: np.ndarray = wrapper.read(self, self.ensure_native_byte_order)
        return array

    dispatch[pickle.BUILD[0]] = _load_build
