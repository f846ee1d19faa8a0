"""A client sending a body the server refuses early reads the answer (issue 15 part 6): real
clients (urllib, http.client, a raw socket) against a real server on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from mlhandoff.serve.linger import LINGER_MAX_BYTES
from serving import SCORER, live_server, pyfunc_bundle

TOKEN = "linger-token"
#: Larger than api.max_body_bytes (1 MB by default) and than the socket buffers, under the cap.
BIG = b"[" + b" " * 27_000_000 + b"]"
RECORD = json.dumps({"x": 1.0, "c": "a", "secret": "s"}).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    bundle = pyfunc_bundle(tmp_path_factory.mktemp("linger"), "scorer", SCORER)
    with live_server(bundle, token=TOKEN) as live:
        yield live


def _headers(token: str | None = TOKEN) -> dict[str, str]:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return {"Content-Type": "application/json", **auth}


def _urlopen_error(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    """The status and JSON body of an error answer, as urllib gives it."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    with caught.value as error:
        return error.code, json.loads(error.read())


def test_urllib_reads_the_413_of_a_27_mb_body(server) -> None:
    # urllib sends "Connection: close": the server used to close at once and reset the upload
    status, body = _urlopen_error(server.url + "/predict", BIG, _headers())
    assert status == 413 and body["error"]["code"] == "payload_too_large"


def test_urllib_reads_an_answer_given_before_the_body_is_read(server) -> None:
    status, body = _urlopen_error(server.url + "/predict", BIG, _headers(token=None))
    assert status == 401 and body["error"]["code"] == "unauthorized"


def test_http_client_reads_the_413_and_keeps_its_connection(server) -> None:
    connection = http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=30)
    try:
        connection.request("POST", "/predict", body=BIG, headers=_headers())
        refused = connection.getresponse()
        assert refused.status == 413 and refused.getheader("connection") != "close"
        assert json.loads(refused.read())["error"]["code"] == "payload_too_large"
        connection.request("POST", "/predict", body=RECORD, headers=_headers())
        answered = connection.getresponse()  # the same connection: the body was read to its end
        assert answered.status == 200 and json.loads(answered.read())["predictions"]
    finally:
        connection.close()


def _raw(server, head: str, body: bytes = b"") -> tuple[bytes, socket.socket]:
    """Sends ``head`` (and ``body``); the answer's head and the open socket."""
    address = urlsplit(server.url)
    sock = socket.create_connection((address.hostname, address.port), timeout=30)
    sock.sendall(head.encode() + body)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        assert chunk, f"closed without an answer: {answer!r}"
        answer += chunk
    return answer, sock


def test_a_body_declared_over_the_lingering_cap_is_answered_and_closed(server) -> None:
    head = (
        f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: {10 * LINGER_MAX_BYTES}\r\n\r\n"
    )
    answer, sock = _raw(server, head, b"[" + b" " * 4096)
    with sock:
        assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower()
        while sock.recv(65536):  # the server closes rather than read 640 MiB
            pass


def test_a_client_that_expects_100_continue_gets_the_answer_without_sending(server) -> None:
    head = (
        f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(BIG)}\r\n"
        "Expect: 100-continue\r\n\r\n"
    )
    answer, sock = _raw(server, head)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:40]  # not "100 Continue": nothing is read


def test_a_body_within_the_limit_is_unaffected(server) -> None:
    assert _urlopen_error(server.url + "/predict", b"[1, 2]", _headers())[0] == 400
    request = urllib.request.Request(
        server.url + "/predict", data=RECORD, headers=_headers(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as ok:
        assert ok.status == 200
