"""A candidate served beside a baseline (serve/canary.py, serve/admin.py) on real servers on
127.0.0.1: the canary split sticky by key, shadow, each version's contract, the admin endpoint
and its CLI, the shared weight in Redis, and the judge's --apply."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from mlhandoff.bundle import open_bundle
from mlhandoff.cli import app
from mlhandoff.errors import InputError
from mlhandoff.rollout.judge import judge_rollout
from mlhandoff.rollout.logs import read_prediction_log
from mlhandoff.serve import ServeConfig, create_app
from rollout_traffic import Arm, traffic
from serving import (
    PYFUNC_FIELDS,
    SCORER,
    LiveServer,
    free_port,
    live_server,
    pyfunc_bundle,
    redis_server,
    scrape,
    wait_until,
)

runner = CliRunner()
FIELDS = {**PYFUNC_FIELDS, "user": {"type": "string", "description": "Whose request."}}
API = {"examples": [{"x": 1.0, "c": "a", "secret": "s", "user": "u1"}]}
ROLLOUT = {
    "rollout": {
        "sticky_key": "user",
        "steps": [{"traffic_percent": 30, "duration": "1h"}],
        "graduate_when": [{"metric": "error_rate", "tolerance": 0.01}],
    },
    "rollback": {"previous_version": "canary-1.0.0"},
}
#: The candidate's model: the baseline's score plus 0.001 (fails for x == 66 as SCORER does).
CANDIDATE = SCORER.replace(
    "return np.clip(x / 100.0, 0, 1)", "return np.clip(x / 100.0 + 0.001, 0, 1)"
)
ADMIN = "admin-secret"
JSON = {"content-type": "application/json"}


def _sample() -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "x": rng.uniform(0, 50, 40),
            "c": rng.choice(["a", "b"], 40),
            "secret": [f"s{i}" for i in range(40)],
            "user": [f"u{i}" for i in range(40)],
        }
    )


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("canary")
    sample = _sample()
    narrow = {**FIELDS, "x": {**FIELDS["x"], "max": 50}}  # breaks callers sending x in (50, 100]
    allow = {**ROLLOUT, "acceptance": {"upgrade": {"allow_breaking_contract": True}}}
    return {
        "baseline": pyfunc_bundle(
            root, "canary", SCORER, API, "1.0.0", fields=FIELDS, sample=sample
        ),
        "candidate": pyfunc_bundle(
            root, "canary", CANDIDATE, API, "1.1.0", fields=FIELDS, sample=sample, extra=ROLLOUT
        ),
        "narrow": pyfunc_bundle(
            root, "canary", CANDIDATE, API, "1.2.0", fields=narrow, sample=sample, extra=ROLLOUT
        ),
        "secret-not-pii": pyfunc_bundle(
            root,
            "canary",
            CANDIDATE,
            API,
            "1.4.0",
            fields={**FIELDS, "secret": {**FIELDS["secret"], "pii": False}},
            sample=sample,
            extra=ROLLOUT,
        ),
        "narrow-allowed": pyfunc_bundle(
            root, "canary", CANDIDATE, API, "1.3.0", fields=narrow, sample=sample, extra=allow
        ),
    }


def _pair(bundles: dict[str, Path], candidate: str = "candidate", **options: Any):
    return live_server(
        bundles[candidate], baseline=bundles["baseline"], model_process=False, **options
    )


def _record(user: str, x: float = 10.0) -> dict[str, Any]:
    return {"x": x, "c": "a", "secret": "s", "user": user}


def _in_canary(user: str, weight: float) -> bool:
    """The split, computed here from its definition: blake2b-64 of the key, mod 10 000."""
    digest = hashlib.blake2b(user.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000 < weight * 100


def _admin(server: LiveServer, method: str, path: str, token: str | None = ADMIN, **kw: Any):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return server.client.request(method, path, headers=headers, **kw)


def test_canary_is_sticky_by_key_says_who_answered_and_logs_what_the_judge_reads(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    users = [f"u{i}" for i in range(40)]
    with _pair(bundles, log_dir=tmp_path / "logs") as server:  # weight: the first step's 30 %
        answered: dict[str, set[str]] = {}
        for _ in range(2):
            for user in users:
                answer = server.client.post("/predict", json=_record(user))
                assert answer.status_code == 200, answer.text
                tag = answer.headers["X-Model-Version"]
                body = answer.json()
                assert body["model"]["version_tag"] == tag  # the body names the same version
                answered.setdefault(user, set()).add(body["model"]["version"])
        assert all(len(v) == 1 for v in answered.values())  # one subject, one version
        expected = {u: "1.1.0" if _in_canary(u, 30) else "1.0.0" for u in users}
        assert {u: next(iter(v)) for u, v in answered.items()} == expected
        n_candidate = sum(v == "1.1.0" for v in expected.values())
        assert 0 < n_candidate < len(users)
        # the protocols whose bodies are fixed: MLflow says it in the header, v2 in its body
        canary_user = next(u for u, v in expected.items() if v == "1.1.0")
        mlflow = server.client.post(
            "/invocations", json={"dataframe_records": [_record(canary_user)]}
        )
        assert mlflow.headers["X-Model-Version"] == "v1.1.0"
        assert set(mlflow.json()) == {"predictions"}
        assert mlflow.json()["predictions"][0]["score"] == pytest.approx(0.101)
        v2 = server.client.post(
            "/v2/models/canary/infer",
            json={
                "inputs": [
                    {"name": k, "shape": [1], "datatype": "BYTES", "data": [v]}
                    for k, v in _record(canary_user).items()
                ]
            },
        )
        assert v2.status_code == 200, v2.text
        assert v2.json()["model_version"] == "1.1.0"
        # a failure of the candidate's model: a 500 the log records with its status
        failed = server.client.post("/predict", json=_record(canary_user, x=66))
        assert failed.status_code == 500
        metrics = scrape(server.client)
        assert (
            metrics.value(
                "mlhandoff_requests_total", version="1.1.0", route="/predict", status="200"
            )
            == 2 * n_candidate
        )
        assert metrics.value("mlhandoff_requests_total", version="1.0.0") == 2 * (
            len(users) - n_candidate
        )
        assert metrics.value("mlhandoff_request_latency_seconds_count", version="1.1.0") > 0
        assert metrics.value("mlhandoff_prediction_value_count", version="1.0.0") > 0
        assert metrics.value("mlhandoff_rollout_weight", mode="canary") == 30
    log = read_prediction_log(tmp_path / "logs", {"status", "latency_ms", "request_id"}).table
    assert log.num_rows == 2 * len(users) + 3  # every answer and the model's failure
    versions = log.column("model_version").to_pylist()
    assert versions.count("1.1.0") == 2 * n_candidate + 3
    assert set(log.column("status").to_pylist()) == {200, 500}
    assert pc.min(log.column("latency_ms")).as_py() > 0
    errors = log.filter(pc.equal(log.column("status"), 500))
    assert errors.column("model_version").to_pylist() == ["1.1.0"]
    # the judge reads the server's log as it is: both arms, too few samples to graduate
    judgement = judge_rollout(open_bundle(bundles["candidate"]), tmp_path / "logs")
    assert (judgement.candidate, judgement.baseline) == ("1.1.0", "1.0.0")
    assert judgement.requests == {
        "candidate": n_candidate * 2 + 3,
        "baseline": log.num_rows - n_candidate * 2 - 3,
    }
    assert judgement.verdict != "graduate"


def test_shadow_answers_with_the_baseline_and_logs_the_candidate(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    with _pair(bundles, shadow=True, log_dir=tmp_path / "logs") as server:
        for i in range(6):
            answer = server.client.post("/predict", json=_record(f"u{i}"))
            assert answer.headers["X-Model-Version"] == "v1.0.0"
            assert answer.json()["predictions"][0]["score"] == pytest.approx(0.1)
        wait_until(
            lambda: (
                scrape(server.client).value(
                    "mlhandoff_shadow_predictions_total", version="1.1.0", status="200"
                )
                == 6
            ),
            "six shadow predictions",
        )
        assert scrape(server.client).value("mlhandoff_requests_total", version="1.0.0") == 6
    wanted = {"status", "shadow", "request_id", "output.score"}
    log = read_prediction_log(tmp_path / "logs", wanted).table
    rows = log.to_pylist()
    shadows = [r for r in rows if r["shadow"]]
    assert {r["model_version"] for r in shadows} == {"1.1.0"} and len(shadows) == 6
    assert {r["request_id"] for r in shadows} == {r["request_id"] for r in rows if not r["shadow"]}
    assert [r["output.score"] for r in shadows] == pytest.approx([0.101] * 6)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_admin_endpoint_changes_the_split_only_with_its_token(bundles: dict[str, Path]) -> None:
    with _pair(bundles, canary_weight=10, token="client-secret", admin_token=ADMIN) as server:
        state = _admin(server, "GET", "/admin/rollout").json()
        assert (state["mode"], state["weight"], state["candidate"], state["baseline"]) == (
            "canary",
            10,
            "1.1.0",
            "1.0.0",
        )
        refusals = {
            "no token": (
                _admin(server, "PUT", "/admin/rollout", None, json={"weight": 50}),
                401,
                "unauthorized",
            ),
            "the clients' token": (
                _admin(server, "PUT", "/admin/rollout", "client-secret", json={"weight": 50}),
                403,
                "forbidden",
            ),
            "a wrong token": (_admin(server, "POST", "/admin/rollback", "guess"), 403, "forbidden"),
            "weight 150": (
                _admin(server, "PUT", "/admin/rollout", json={"weight": 150}),
                422,
                "weight_out_of_range",
            ),
            "weight -1": (
                _admin(server, "PUT", "/admin/rollout", json={"weight": -1}),
                422,
                "weight_out_of_range",
            ),
            "weight text": (
                _admin(server, "PUT", "/admin/rollout", json={"weight": "50"}),
                422,
                "weight_out_of_range",
            ),
            "unknown key": (
                _admin(server, "PUT", "/admin/rollout", json={"weigth": 50}),
                400,
                "invalid_rollout_change",
            ),
            "unknown mode": (
                _admin(server, "PUT", "/admin/rollout", json={"mode": "blue"}),
                400,
                "invalid_rollout_change",
            ),
        }
        for what, (answer, status, code) in refusals.items():
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), what
        assert _admin(server, "GET", "/admin/rollout").json()["weight"] == 10  # nothing changed

        server_log, handler = logging.getLogger("mlhandoff.serve"), _Records()
        server_log.addHandler(handler)
        try:
            changed = _admin(server, "PUT", "/admin/rollout", json={"weight": 100}).json()
        finally:
            server_log.removeHandler(handler)
        assert changed["weight"] == 100 and changed["changed_by"].endswith("@127.0.0.1")
        assert changed["changed_by"].startswith("admin-token:")
        assert ADMIN not in changed["changed_by"]
        (line,) = [r for r in handler.records if "rollout changed" in r.getMessage()]
        assert "canary 10% -> canary 100%" in line.getMessage()
        assert line.rollout["changed_at"] == changed["changed_at"]  # type: ignore[attr-defined]
        client = {"Authorization": "Bearer client-secret"}
        answer = server.client.post("/predict", json=_record("anyone"), headers=client)
        assert answer.headers["X-Model-Version"] == "v1.1.0"

        rolled = _admin(server, "POST", "/admin/rollback").json()
        assert rolled["weight"] == 0
        for user in ("u1", "u2", "u3"):
            answer = server.client.post("/predict", json=_record(user), headers=client)
            assert answer.headers["X-Model-Version"] == "v1.0.0"
        shadow = _admin(server, "PUT", "/admin/rollout", json={"mode": "shadow", "weight": 100})
        assert shadow.json()["mode"] == "shadow"
        answer = server.client.post("/predict", json=_record("u1"), headers=client)
        assert answer.headers["X-Model-Version"] == "v1.0.0"


def test_rollout_cli_sets_the_weight_and_rolls_back(
    bundles: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", ADMIN)
    monkeypatch.setenv("WRONG_TOKEN", "guess")
    with _pair(bundles, admin_token=ADMIN) as server:
        done = runner.invoke(
            app, ["rollout", "set-weight", server.url, "25", "--token-env", "ADMIN_TOKEN", "--json"]
        )
        assert done.exit_code == 0, done.output
        assert json.loads(done.output)["weight"] == 25
        refused = runner.invoke(
            app, ["rollout", "set-weight", server.url, "150", "--token-env", "ADMIN_TOKEN"]
        )
        assert refused.exit_code == 2
        wrong = runner.invoke(app, ["rollback", server.url, "--token-env", "WRONG_TOKEN"])
        assert wrong.exit_code == 2 and "403 (forbidden)" in wrong.output
        status = runner.invoke(app, ["rollout", "status", server.url, "--token-env", "ADMIN_TOKEN"])
        assert "canary 25% to the candidate 1.1.0 (baseline 1.0.0)" in status.output
        done = runner.invoke(app, ["rollback", server.url, "--token-env", "ADMIN_TOKEN"])
        assert done.exit_code == 0 and "canary 0% to the candidate" in done.output
        unset = runner.invoke(app, ["rollback", server.url, "--token-env", "NO_SUCH_VARIABLE"])
        assert unset.exit_code == 2 and "NO_SUCH_VARIABLE" in unset.output


def test_a_candidate_that_breaks_the_baselines_contract_is_refused(
    bundles: dict[str, Path],
) -> None:
    with pytest.raises(InputError) as refused:
        create_app(ServeConfig(bundle=bundles["narrow"], baseline=bundles["baseline"]))
    message = str(refused.value)
    assert "breaks the data contract of the baseline 1.0.0" in message
    assert "x: " in message and "allow_breaking_contract" in message
    done = runner.invoke(
        app, ["serve", str(bundles["narrow"]), "--baseline", str(bundles["baseline"])]
    )
    assert done.exit_code == 2 and "breaks the data contract" in done.output


def test_a_request_the_candidate_refuses_is_answered_by_the_baseline(
    bundles: dict[str, Path],
) -> None:
    with _pair(bundles, "narrow-allowed", canary_weight=100) as server:
        inside = server.client.post("/predict", json=_record("u1", x=20))
        assert inside.headers["X-Model-Version"] == "v1.3.0"
        outside = server.client.post("/predict", json=_record("u1", x=80))
        assert outside.status_code == 200 and outside.headers["X-Model-Version"] == "v1.0.0"
        assert scrape(server.client).value("mlhandoff_candidate_contract_refused_total") == 1
        neither = server.client.post("/predict", json=_record("u1", x=150))
        assert neither.status_code == 422
        assert neither.json()["error"]["violations"][0]["field"] == "x"


def test_options_that_need_a_baseline_or_differ_are_refused(bundles: dict[str, Path]) -> None:
    cases = {
        "--canary-weight needs --baseline": {"canary_weight": 10},
        "--admin-token-env needs --baseline": {"admin_token": ADMIN},
    }
    for message, options in cases.items():
        with pytest.raises(InputError, match=message):
            create_app(ServeConfig(bundle=bundles["candidate"], **options))
    with pytest.raises(InputError, match="the admin token is the clients' token"):
        create_app(
            ServeConfig(
                bundle=bundles["candidate"],
                baseline=bundles["baseline"],
                token="same",
                admin_token="same",
            )
        )
    with pytest.raises(InputError, match=r"both version 1\.0\.0"):
        create_app(
            ServeConfig(bundle=bundles["baseline"], baseline=bundles["baseline"], canary_weight=5)
        )
    with pytest.raises(InputError, match="--baseline needs --canary-weight PERCENT"):
        create_app(ServeConfig(bundle=bundles["baseline"], baseline=bundles["candidate"]))
    done = runner.invoke(
        app,
        [
            "serve",
            str(bundles["candidate"]),
            "--baseline",
            str(bundles["baseline"]),
            "--workers",
            "2",
        ],
    )
    assert done.exit_code == 2 and "--workers with --baseline needs --redis" in done.output


def test_replicas_share_the_weight_through_redis(bundles: dict[str, Path]) -> None:
    port = free_port()
    redis = redis_server(port)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        with (
            _pair(bundles, canary_weight=10, admin_token=ADMIN, redis_url=url) as one,
            _pair(bundles, canary_weight=50, admin_token=ADMIN, redis_url=url) as two,
        ):
            # the second replica adopts the weight the first one set at its start
            assert _admin(two, "GET", "/admin/rollout").json()["weight"] == 10
            _admin(one, "PUT", "/admin/rollout", json={"weight": 100})
            wait_until(
                lambda: (
                    two.client.post("/predict", json=_record("u7")).headers["X-Model-Version"]
                    == "v1.1.0"
                ),
                "the second replica to route by the weight set on the first",
            )
            _admin(two, "POST", "/admin/rollback")
            wait_until(
                lambda: _admin(one, "GET", "/admin/rollout").json()["weight"] == 0,
                "the first replica to see the rollback made on the second",
            )
    finally:
        redis.terminate()
        redis.communicate(timeout=15)


def test_judge_apply_sets_the_verdicts_weight_on_the_server(
    bundles: dict[str, Path], example_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A candidate failing 3 % of requests: the judge rolls it back, --apply sets weight 0."""
    traffic(
        tmp_path / "logs",
        requests=200_000,
        candidate=Arm(error_rate=0.03),
        baseline=Arm(),
        share=0.05,
        hours=2,
    )
    monkeypatch.setenv("ADMIN_TOKEN", ADMIN)
    with _pair(bundles, canary_weight=30, admin_token=ADMIN) as server:
        done = runner.invoke(
            app,
            [
                "rollout",
                "judge",
                str(example_bundle),
                "--logs",
                str(tmp_path / "logs"),
                "--apply",
                server.url,
                "--token-env",
                "ADMIN_TOKEN",
                "--json",
            ],
        )
        assert done.exit_code == 1, done.output
        assert json.loads(done.output)["applied"]["weight"] == 0
        assert _admin(server, "GET", "/admin/rollout").json()["weight"] == 0


def test_a_field_either_version_calls_pii_stays_out_of_the_log(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    with _pair(bundles, "secret-not-pii", canary_weight=100, log_dir=tmp_path / "logs") as server:
        answer = server.client.post("/predict", json={**_record("u1"), "secret": "4111-1111"})
        assert answer.headers["X-Model-Version"] == "v1.4.0"
    log = read_prediction_log(tmp_path / "logs", {"input.secret"}).table
    assert log.column("input.secret").to_pylist() == [None]
