"""Shared fixtures: the bundled example's data and model, built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from example_modules import EXAMPLE, load_example_module
from signers import SIGNERS, sign_example


@pytest.fixture(scope="session")
def example_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example with small generated data and a trained model in work/."""
    root = tmp_path_factory.mktemp("example")
    for name in ("handoff.yaml", "train.py", "generate.py"):
        shutil.copy(EXAMPLE / name, root / name)
    generate = load_example_module("generate")
    train = load_example_module("train")
    work = root / "work"
    generate.write(8000, 42, work)
    import pandas as pd
    import skops.io
    from threadpoolctl import threadpool_limits

    # OpenMP workers spin-wait; on a shared 2-core machine one thread is far faster.
    with threadpool_limits(1):
        model = train.train(pd.read_parquet(work / "train.parquet"), seed=42)
    skops.io.dump(model, work / "model.skops")
    from mlhandoff.bundle.signing import generate_key

    for name, _, _ in SIGNERS:  # the spec's security.keyring: work/keys
        generate_key(work / "keys" / f"{name}.key")
    return root


@pytest.fixture(scope="session")
def example_model(example_dir: Path) -> object:
    import skops.io

    path = example_dir / "work" / "model.skops"
    return skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))


@pytest.fixture(scope="session")
def example_bundle(example_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example packed once (signed, with its three sign-offs), for tests that only read or
    serve it."""
    import mlhandoff

    bundle = mlhandoff.pack(
        spec=example_dir / "handoff.yaml", out=tmp_path_factory.mktemp("bundle")
    ).path
    sign_example(bundle, example_dir)
    return bundle
