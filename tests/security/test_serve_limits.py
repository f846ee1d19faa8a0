"""Attack pass, server side: slow and broken clients are cut off with the right status, their
disconnects are not server errors, and what a client can make the server hold is bounded."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import pytest

from mlhandoff.serve.guards import MAX_HEADERS
from mlhandoff.serve.idempotency import MAX_KEY_LENGTH
from mlhandoff.serve.state import MemoryStore
from serving import live_server, pyfunc_bundle

SCORE = """
import numpy as np

def predict(frame):
    return np.clip(frame["x"].to_numpy() / 100.0, 0, 1)
"""
RECORD = b'{"x": 5.0, "c": "a"}'


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pyfunc_bundle(
        tmp_path_factory.mktemp("limits"), "limits", SCORE, api={"idempotency": True}
    )


def _raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def _status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]) if data else 0


def _count(metrics: str, status: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("mlhandoff_requests_total{") and f'status="{status}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_body_shorter_than_its_length_gets_408_and_others_are_served(bundle: Path) -> None:
    with live_server(bundle, body_timeout_s=1.0) as server:
        slow = _raw(server.url)
        head = (
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n"
        )
        slow.sendall(head + RECORD[:5])  # and nothing more: the rest never comes
        started = time.monotonic()
        assert (
            server.client.post(
                "/predict", content=RECORD, headers={"Content-Type": "application/json"}
            ).status_code
            == 200
        )
        assert _status(slow) == 408
        assert time.monotonic() - started < 10
        slow.close()


def test_a_trickled_body_is_cut_off(bundle: Path) -> None:
    with live_server(bundle, body_timeout_s=1.0) as server:
        sock = _raw(server.url)
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(RECORD)}\r\n\r\n".encode()
        )
        status = 0
        for byte in RECORD:  # one byte every 0.2 s: 4 s for the body, over the 1 s limit
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.2)
            sock.setblocking(False)
            try:
                status = _status(sock)
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
            if status:
                break
        assert status == 408
        sock.close()


def test_too_many_or_too_large_headers_get_431(bundle: Path) -> None:
    with live_server(bundle) as server:
        many = {f"x-h{i}": "1" for i in range(MAX_HEADERS + 5)}
        got = server.client.post(
            "/predict", content=RECORD, headers={"Content-Type": "application/json", **many}
        )
        assert got.status_code == 431 and got.json()["error"]["code"] == "headers_too_large"
        big = {"x-big": "a" * 40_000}
        got = server.client.post(
            "/predict", content=RECORD, headers={"Content-Type": "application/json", **big}
        )
        assert got.status_code == 431


def test_a_client_that_disconnects_mid_body_is_499_not_500(bundle: Path) -> None:
    with live_server(bundle) as server:
        before = server.client.get("/metrics").text
        sock = _raw(server.url)
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + RECORD[:5]
        )
        time.sleep(0.3)
        sock.close()
        deadline = time.monotonic() + 10
        while _count(server.client.get("/metrics").text, "499") < 1:
            assert time.monotonic() < deadline, "the disconnect was never counted"
            time.sleep(0.05)
        after = server.client.get("/metrics").text
        assert _count(after, "500") == _count(before, "500")


def test_a_long_idempotency_key_is_refused(bundle: Path) -> None:
    with live_server(bundle) as server:
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": "k" * (MAX_KEY_LENGTH + 1),
        }
        got = server.client.post("/predict", content=RECORD, headers=headers)
        assert got.status_code == 400
        assert got.json()["error"]["code"] == "idempotency_key_too_long"
        headers["Idempotency-Key"] = "k" * MAX_KEY_LENGTH
        assert server.client.post("/predict", content=RECORD, headers=headers).status_code == 200


def test_the_memory_store_is_bounded_in_bytes() -> None:
    store = MemoryStore(max_bytes=10_000)

    async def fill() -> None:
        for i in range(200):
            await store.set(f"idem:{i}", b"x" * 500, 3600)

    asyncio.run(fill())
    assert store.bytes_held <= 10_000
    assert asyncio.run(store.get("idem:199")) == b"x" * 500  # the newest kept
    assert asyncio.run(store.get("idem:0")) is None  # the oldest evicted first


def test_prediction_log_write_failures_are_counted_as_dropped(bundle: Path, tmp_path: Path) -> None:
    """A full disk (here: a file size limit) drops log records; the metric must say so."""
    import os
    import resource
    import subprocess
    import sys

    from serving import free_port

    port = free_port()
    exe = Path(sys.executable).with_name("mlhandoff")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    server = subprocess.Popen(
        [str(exe), "serve", str(bundle), "--port", str(port), "--log-dir", str(tmp_path / "log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=limit,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
            batch = [{"x": float(i % 90), "c": "a", "secret": "s" * 50} for i in range(200)]
            for _ in range(5):
                assert client.post("/predict", json={"instances": batch}).status_code == 200
            dropped = 0.0
            while dropped == 0:
                text = client.get("/metrics").text
                dropped = sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("mlhandoff_prediction_log_dropped_total")
                )
                assert time.monotonic() < deadline + 30, "no dropped record was ever counted"
                time.sleep(0.2)
            assert (
                client.post(
                    "/predict", content=RECORD, headers={"Content-Type": "application/json"}
                ).status_code
                == 200
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
