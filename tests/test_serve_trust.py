"""Serving only signed bundles (serve --public-key), and the prediction log's retention."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from mlhandoff.bundle.manifest import build_manifest, read_manifest, write_manifest
from mlhandoff.bundle.signing import generate_key, sign_bundle
from mlhandoff.cli import app
from mlhandoff.errors import SignatureError
from mlhandoff.serve.config import ServeConfig
from mlhandoff.serve.predlog import PredictionLog
from mlhandoff.serve.service import ModelService
from serving import SCORER, live_server, pyfunc_bundle

LOADED = (
    """
import pathlib
pathlib.Path(__file__).with_name("LOADED").write_text("imported")  # deserialising runs this
"""
    + SCORER
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keys")
    for name in ("eli", "mallory"):
        generate_key(root / f"{name}.key")
    return root


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    return pyfunc_bundle(tmp_path, "signed-scorer", SCORER)


def _serve(*args: object):
    return CliRunner().invoke(app, ["serve", *map(str, args)], catch_exceptions=False)


def test_serve_refuses_an_unsigned_bundle(bundle: Path, keys: Path) -> None:
    result = _serve(bundle, "--public-key", keys / "eli.pub", "--port", "9")
    assert result.exit_code == 2 and "signature_invalid" in result.output
    assert "the bundle is not signed" in result.output


def test_serve_refuses_a_signature_by_another_key(bundle: Path, keys: Path) -> None:
    sign_bundle(bundle, keys / "mallory.key")
    result = _serve(bundle, "--public-key", keys / "eli.pub", "--port", "9")
    assert result.exit_code == 2 and "not in the given public keys" in result.output


def test_serve_refuses_a_tampered_signed_bundle_before_loading_it(bundle: Path, keys: Path) -> None:
    sign_bundle(bundle, keys / "eli.key")
    code = next((bundle / "model").rglob("*_model.py"))
    code.write_text(code.read_text() + "\n# changed after signing\n")
    manifest = read_manifest(bundle)
    meta = {k: manifest[k] for k in ("name", "version", "created_at", "created_by")}
    write_manifest(bundle, build_manifest(bundle, meta))  # integrity alone would pass
    # refused while the service is built, before the runner starts loading the model
    with pytest.raises(SignatureError, match=r"changed since signing: MANIFEST\.json, model/"):
        ModelService(ServeConfig(bundle=bundle, public_keys=(keys / "eli.pub",)))


def test_serve_answers_for_a_bundle_signed_with_the_key(bundle: Path, keys: Path) -> None:
    sign_bundle(bundle, keys / "eli.key")
    with live_server(bundle, public_keys=(keys / "eli.pub",), model_process=False) as server:
        body = {"instances": [{"x": 10.0, "c": "a", "secret": "s"}]}
        answer = httpx.post(f"{server.url}/predict", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0]["score"] == pytest.approx(0.1)


def test_the_log_rotation_deletes_files_past_the_retention(tmp_path: Path) -> None:
    old = tmp_path / "predictions-20260101T000000-00001.parquet"
    old.write_bytes(b"old")
    past = time.time() - 40 * 86400
    os.utime(old, (past, past))
    log = PredictionLog(tmp_path, pii_fields=[], model_version="m-1", retention=timedelta(days=30))
    log.record("r1", pa.table({"x": [1.0]}), pa.table({"score": [0.5]}))
    log.close()  # flushes and rotates: the closed file is written, the old one pruned
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not old.exists() and len(names) == 1 and names[0].endswith(".parquet")
