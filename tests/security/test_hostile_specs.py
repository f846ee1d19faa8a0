"""Hostile specs cost little to refuse: alias bombs, deep nesting, endless or huge files.

Every command reads a spec, including the frozen one inside a bundle someone sent, so each of
these must end in a SpecError naming the file (exit 2), quickly and in little memory. The cases
that took minutes and gigabytes before the bounds run in a child process with a time and
memory budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile import run_python
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mlhandoff.cli import main
from mlhandoff.errors import SpecError
from mlhandoff.spec import load_spec, parse_spec
from mlhandoff.spec.loader import MAX_DEPTH, MAX_SPEC_BYTES, MAX_VALUES

SPEC = Path(__file__).resolve().parents[2] / "examples" / "risky_transactions" / "handoff.yaml"

#: Loads a spec in a child with 2 GiB of address space; prints how it ended.
_LOAD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from mlhandoff.errors import SpecError
from mlhandoff.spec import load_spec
try:
    load_spec(sys.argv[1])
except SpecError as exc:
    print("refused:", exc)
else:
    print("loaded")
"""


def _laughs(levels: int, fanout: int) -> str:
    """Level 0 holds ``fanout`` strings; each next level holds ``fanout`` aliases of the last."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * fanout)}]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fanout)}]")
    return "\n".join(lines) + "\n"


def _expanded_values(levels: int, fanout: int) -> int:
    """Independent count of the values the document above holds once expanded."""
    sizes = [1 + fanout]
    for _ in range(levels):
        sizes.append(1 + fanout * sizes[-1])
    return 1 + sum(1 + s for s in sizes)  # the root mapping, then each key and its list


def _refused_in_child(path: Path) -> str:
    done = run_python(_LOAD, str(path), timeout=60)
    assert done.returncode == 0, done.stderr[-1500:]
    assert done.stdout.startswith("refused:"), done.stdout
    return done.stdout


def test_billion_laughs_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "handoff.yaml"
    path.write_text(_laughs(8, 10))
    assert _expanded_values(8, 10) > 10**9 and path.stat().st_size < 600
    out = _refused_in_child(path)
    assert f"{path}:" in out and "aliases here expand to more than 1,000,000 values" in out


def test_an_endless_file_is_read_only_up_to_the_limit() -> None:
    zero = Path("/dev/zero")
    if not zero.exists():
        pytest.skip("no /dev/zero here")
    out = _refused_in_child(zero)
    assert "/dev/zero" in out and f"larger than {MAX_SPEC_BYTES:,} bytes" in out


@settings(max_examples=40, deadline=None)
@given(levels=st.integers(0, 6), fanout=st.integers(1, 12))
def test_alias_expansion_is_refused_exactly_past_the_bound(levels: int, fanout: int) -> None:
    assume(_expanded_values(levels, fanout) <= 2 * MAX_VALUES)  # bounded without the bound too
    with pytest.raises(SpecError) as info:  # the document is no spec either way
        parse_spec(_laughs(levels, fanout), file=Path("handoff.yaml"))
    refused = "aliases here expand" in str(info.value)
    assert refused == (_expanded_values(levels, fanout) > MAX_VALUES)


@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_deep_nesting_is_a_spec_error_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], opener: str
) -> None:
    closer = "]" if opener == "[" else "}"
    path = tmp_path / "handoff.yaml"
    path.write_text(SPEC.read_text() + "deep: " + opener * 20_000 + closer * 20_000 + "\n")
    with pytest.raises(SystemExit) as info:
        main(["pack", str(path), "--out", str(tmp_path / "dist")])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert "handoff.yaml" in err and f"nested more than {MAX_DEPTH} levels" in err
    assert "bug in mlhandoff" not in err


@settings(max_examples=30, deadline=None)
@given(depth=st.integers(1, 3 * MAX_DEPTH), opener=st.sampled_from(["[", "{a: "]))
def test_any_nesting_loads_or_is_a_spec_error(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    with pytest.raises(SpecError) as info:  # a bare nested value is no spec either way
        parse_spec(opener * depth + "1" + closer * depth, file=Path("handoff.yaml"))
    assert ("nested more than" in str(info.value)) == (depth >= MAX_DEPTH)


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    with pytest.raises(SpecError, match=r"handoff\.yaml:1:4: an alias refers to the anchor"):
        parse_spec("a: &a [*a]\n", file=Path("handoff.yaml"))


def test_an_oversized_spec_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "handoff.yaml"
    path.write_text(SPEC.read_text() + "#" * MAX_SPEC_BYTES + "\n")
    with pytest.raises(SpecError, match=rf"handoff\.yaml.*larger than {MAX_SPEC_BYTES:,} bytes"):
        load_spec(path)


def test_anchors_and_aliases_used_as_meant_still_load(tmp_path: Path) -> None:
    text = SPEC.read_text()
    dana = "{name: Dana Scientist, email: dana@example.com, team: Risk ML}"
    eli = "{name: Eli Engineer, email: eli@example.com, team: Payments Platform}"
    pat = "{name: Pat Manager, email: pat@example.com, team: Payments}"
    assert dana in text and eli in text and pat in text
    text = text.replace(dana, f"&dana {dana}").replace(eli, "*dana").replace(pat, "*dana")
    path = tmp_path / "handoff.yaml"
    path.write_text(text)
    owners = load_spec(path).owners
    assert owners.product == owners.engineering == owners.data_science
    assert owners.product.name == "Dana Scientist"
