"""The names ``security.trusted_types`` can never unlock: one rule for skops and pickle files.

Trusting a name lets a model file call it with arguments the file chooses. For most names that
is a reviewed decision (``functools.partial``, ``numpy.log1p``), but a name that runs code
(``builtins.exec``, ``timeit.timeit``, ``cProfile.run``), opens files or sockets (``io.open``,
``numpy.load``) or looks other names up (``builtins.getattr``, ``operator.methodcaller``,
``obj.__globals__``) hands the file the whole process. Those are refused whatever the spec
says, both by the name the file writes and by the real name of what that name resolves to
(``shlex.os.system`` is ``posix.system``). The list is a backstop, not a proof: a name not on
it is trusted only because a person listed it after reviewing it.
"""

from __future__ import annotations

import re
import types

#: Modules (and everything under them) whose members run code, touch files, the network or
#: other processes, or import and look up names.
_NEVER_MODULES = frozenset(
    {
        # run code or other programs
        "os",
        "posix",
        "nt",
        "subprocess",
        "_posixsubprocess",
        "pty",
        "runpy",
        "code",
        "codeop",
        "timeit",
        "cProfile",
        "profile",
        "pdb",
        "bdb",
        "trace",
        "doctest",
        "pydoc",
        "idlelib",
        "webbrowser",
        "multiprocessing",
        "concurrent",
        "asyncio",
        "threading",
        "_thread",
        "signal",
        "sys",
        "ctypes",
        "_ctypes",
        "cffi",
        "types",
        "operator",
        "_operator",
        # unpickle, unmarshal or load code
        "pickle",
        "_pickle",
        "marshal",
        "shelve",
        "dill",
        "cloudpickle",
        "yaml",
        "importlib",
        "pkgutil",
        "zipimport",
        "site",
        # files, sockets, URLs
        "io",
        "_io",
        "codecs",
        "pathlib",
        "tempfile",
        "shutil",
        "glob",
        "fileinput",
        "mmap",
        "gzip",
        "bz2",
        "lzma",
        "zipfile",
        "tarfile",
        "sqlite3",
        "dbm",
        "logging",
        "socket",
        "_socket",
        "ssl",
        "select",
        "selectors",
        "urllib",
        "http",
        "ftplib",
        "smtplib",
        "xmlrpc",
    }
)

#: Single names (and what is under them) in modules that are otherwise part of models.
_NEVER_NAMES = frozenset(
    {f"builtins.{n}" for n in ("eval", "exec", "compile", "__import__", "__build_class__")}
    | {f"builtins.{n}" for n in ("getattr", "setattr", "delattr", "globals", "locals", "vars")}
    | {f"builtins.{n}" for n in ("open", "input", "breakpoint", "help", "exit", "quit")}
    | {"builtins.function", "builtins.code"}  # the real names of types.FunctionType, CodeType
    | {
        f"numpy.{n}"
        for n in (
            "load",
            "save",
            "savez",
            "savez_compressed",
            "savetxt",
            "loadtxt",
            "genfromtxt",
            "fromfile",
            "fromregex",
            "memmap",
            "DataSource",
            "ctypeslib",
            "f2py",
            "distutils",
            "testing",
            "lib.npyio",
            "lib.format",
            "rec.fromfile",
            "_core.records.fromfile",
        )
    }
    | {"joblib.load", "joblib.dump", "joblib.numpy_pickle.load", "joblib.numpy_pickle.dump"}
    | {"joblib.Memory", "joblib.memory", "joblib.Parallel", "joblib.parallel", "joblib.externals"}
    | {"pandas.io", "pandas.read_pickle", "scipy.io", "sklearn.datasets"}
)

#: ``__globals__``, ``__subclasses__``, ``__builtins__`` ...: attribute walks to anything.
_DUNDER = re.compile(r"__\w+__")

#: Why, in words the refusal uses.
WHY = (
    "it can run code, open files or look names up, so it is never trusted, whatever "
    "security.trusted_types says"
)


def never_trusted(name: str) -> bool:
    """Whether the dotted ``module.name`` is one that no spec may trust."""
    parts = name.split(".")
    if parts[0] in _NEVER_MODULES or any(_DUNDER.fullmatch(p) for p in parts[1:]):
        return True
    return any(".".join(parts[:i]) in _NEVER_NAMES for i in range(2, len(parts) + 1))


def never_trusted_object(obj: object) -> bool:
    """Whether what a name resolved to is, under its real name, one that no spec may trust."""
    real = real_name(obj)
    return real is not None and never_trusted(real)


def real_name(obj: object) -> str | None:
    """``module.qualname`` of a function, class or module, where it says; else None."""
    name = getattr(obj, "__name__", None)
    if isinstance(obj, types.ModuleType) and isinstance(name, str):
        return name
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", name)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    return None
