"""``security.trusted_types`` cannot unlock names that run code, open files or look names up.

One rule (``mlhandoff.flavors.trust``) for pickle and skops files, judged by the name a file
writes and by the real name of what it resolves to; ``init`` never proposes such a name.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pandas as pd
import pytest
from hostile import short_unicode, touch_code, touch_command, write_skops_call

from mlhandoff.errors import UnsafeModelError
from mlhandoff.flavors import LoadOptions, load_predictor
from mlhandoff.flavors import _safe_pickle as safe_pickle
from mlhandoff.flavors.trust import never_trusted
from mlhandoff.scaffold import scaffold
from mlhandoff.spec import parse_spec


def _calls(marker: Path) -> dict[str, tuple[str, ...]]:
    """Names that would create ``marker`` when called with these arguments at load time."""
    code = touch_code(marker)
    return {
        "timeit.timeit": ("pass", code),  # the setup statement runs once
        "cProfile.run": (code,),
        "io.open": (str(marker), "w"),
        "builtins.exec": (code,),
        "posix.system": (touch_command(marker),),
    }


#: Never called by these tests (pdb would stop at a prompt): only named, and refused.
_NAMED_ONLY = ("pdb.run", "operator.methodcaller", "operator.attrgetter", "builtins.getattr")


def _pickle_call(module: str, name: str, *args: str) -> bytes:
    stream = b"\x80\x04" + short_unicode(module) + short_unicode(name) + b"\x93("
    for arg in args:
        data = arg.encode()
        stream += b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE
    return stream + b"tR."


def _load_trusting(path: Path, trusted: str) -> None:
    load_predictor(path, "sklearn", LoadOptions(task="regression", trusted_types=(trusted,)))


@pytest.mark.parametrize("target", ["timeit.timeit", "cProfile.run", "io.open", "builtins.exec"])
def test_trusted_pickle_names_that_run_code_stay_refused(
    tmp_path: Path, marker: Path, target: str
) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(_pickle_call(*target.rsplit(".", 1), *_calls(marker)[target]))
    with pytest.raises(UnsafeModelError, match=rf"{target}.*never trusted") as info:
        _load_trusting(path, target)
    assert "add it under" not in str(info.value)  # no advice to trust it
    assert not marker.exists()


@pytest.mark.parametrize("target", _NAMED_ONLY)
def test_trusted_pickle_names_that_look_up_or_debug_stay_refused(
    tmp_path: Path, target: str
) -> None:
    module, _, name = target.rpartition(".")
    stream = b"\x80\x04" + short_unicode(module) + short_unicode(name) + b"\x93."
    with pytest.raises(UnsafeModelError, match="never trusted"):
        safe_pickle.loads(stream, trusted_types=[target])


@pytest.mark.parametrize(
    "target", ["posix.system", "builtins.exec", "timeit.timeit", "cProfile.run", "io.open"]
)
def test_trusted_skops_names_that_run_code_stay_refused(
    tmp_path: Path, marker: Path, target: str
) -> None:
    path = write_skops_call(tmp_path / "model.skops", target, *_calls(marker)[target])
    with pytest.raises(UnsafeModelError, match=rf"{target}.*never trusted"):
        _load_trusting(path, target)
    assert not marker.exists()


def test_an_alias_is_judged_by_what_it_resolves_to(tmp_path: Path, marker: Path) -> None:
    """``shlex`` imports ``os``: ``shlex.os.system`` is ``posix.system`` under another name,
    and ``inspect.attrgetter`` is ``operator.attrgetter``."""
    path = tmp_path / "model.pkl"
    path.write_bytes(_pickle_call("shlex", "os.system", touch_command(marker)))
    with pytest.raises(UnsafeModelError, match=r"it is posix\.system.*never trusted"):
        _load_trusting(path, "shlex.os.system")
    skops = write_skops_call(tmp_path / "model.skops", "inspect.attrgetter", "real")
    with pytest.raises(UnsafeModelError, match=r"that is operator\.attrgetter.*never trusted"):
        _load_trusting(skops, "inspect.attrgetter")
    assert not marker.exists()


def test_one_rule_for_both_formats() -> None:
    for name in [*_calls(Path("x")), *_NAMED_ONLY, "shlex.os.system.__globals__"]:
        assert never_trusted(name), name
    # What models legitimately need stays trustable, and nothing the pickle allowlist admits
    # by itself is on the list.
    for name in ("functools.partial", "numpy.log1p", "sklearn.utils.validation.check_array"):
        assert not never_trusted(name), name
    assert not [g for g in safe_pickle.ALLOWED_GLOBALS if never_trusted(g)]


def test_init_never_proposes_them(tmp_path: Path) -> None:
    model = write_skops_call(
        tmp_path / "model.skops", "posix.system", "true", functions=("functools.reduce",)
    )
    sample = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]})
    text = scaffold(model_path=model, sample=sample, spec_path=tmp_path / "handoff.yaml", label="y")
    assert "  #  - functools.reduce\n" in text  # reviewable: proposed, commented out
    assert "#  - posix.system" not in text
    assert "  #    posix.system\n" in text and "never trusted" in text
    assert parse_spec(text).security.trusted_types == []
