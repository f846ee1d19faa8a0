"""The bundle's alert rules in a real Prometheus (Debian's ``prometheus`` package, installed by
``make services``) scraping a real ``mlhandoff serve`` on 127.0.0.1: drifted traffic makes the
drift alert pending, then firing once its ``for:`` has passed (issue 12, part 8)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from serving import SCORER, free_port, pyfunc_bundle, serve_process, wait_ready_at

#: One drift rule with windows short enough for a test: 10 s of traffic, breached for 5 s.
MONITORING = {
    "drift": [
        {
            "field": "x",
            "statistic": "psi",
            "threshold": 0.2,
            "window": "10s",
            "for": "5s",
            "min_rows": 20,
            "alert": "XDrift",
        }
    ],
    "alerts": [
        {
            "name": "XDrift",
            "severity": "ticket",
            "summary": "x moved away from the reference.",
            "runbook": "Compare x's histogram with the reference.",
        }
    ],
}
#: Prometheus scrapes and evaluates every second.
CONFIG = """
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{rules}]
scrape_configs:
  - job_name: mlhandoff
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""
DEADLINE_S = 90


def _prometheus(config: Path, data: Path, port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError(
            "prometheus is not installed: run `make test` (it installs Debian's prometheus "
            "package) or apt-get install prometheus"
        )
    return subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _states(prometheus: httpx.Client) -> set[str]:
    try:
        answer = prometheus.get("/api/v1/alerts")
    except httpx.HTTPError:
        return set()  # not listening yet
    if answer.status_code != 200:
        return set()
    return {
        a["state"] for a in answer.json()["data"]["alerts"] if a["labels"]["alertname"] == "XDrift"
    }


def test_drifted_traffic_fires_the_drift_alert_in_prometheus(tmp_path: Path) -> None:
    bundle = pyfunc_bundle(tmp_path, "drifty", SCORER, monitoring=MONITORING)
    rules = yaml.safe_load((bundle / "docs" / "alerts.yaml").read_text())["groups"][0]["rules"]
    assert [(r["alert"], r["for"]) for r in rules] == [("XDrift", "5s")]
    serve_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(CONFIG.format(rules=bundle / "docs" / "alerts.yaml", port=serve_port))
    server = serve_process(bundle, serve_port, "--no-model-process")
    prometheus = _prometheus(config, tmp_path / "tsdb", prom_port)
    client = httpx.Client(base_url=f"http://127.0.0.1:{serve_port}", timeout=20)
    prom = httpx.Client(base_url=f"http://127.0.0.1:{prom_port}", timeout=5)
    seen: list[tuple[float, str]] = []
    try:
        wait_ready_at(client, timeout_s=60)
        # The reference's x lies in [0, 50): every drifted x is beyond its range.
        drifted = {"instances": [{"x": 90.0 + i % 10, "c": "a"} for i in range(20)]}
        started = time.monotonic()
        while time.monotonic() - started < DEADLINE_S:
            assert server.poll() is None and prometheus.poll() is None, "a process died"
            assert client.post("/predict", json=drifted).status_code == 200
            for state in sorted(_states(prom)):
                if not seen or seen[-1][1] != state:
                    seen.append((time.monotonic() - started, state))
            if seen and seen[-1][1] == "firing":
                break
            time.sleep(0.25)
        metrics = client.get("/metrics").text
    finally:
        client.close()
        prom.close()
        for process in (prometheus, server):
            process.terminate()
        for process in (prometheus, server):
            try:
                process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
    assert 'mlhandoff_drift{field="x",statistic="psi"}' in metrics
    states = [state for _, state in seen]
    assert states == ["pending", "firing"], seen
