"""Issue 14 rows 4, 13, 16 against a real uvicorn server: no work before the 401, a size limit (413) on JSON
and multipart bodies announced or streamed, trusted Host headers only, and no short token."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from urllib.parse import urlsplit

import httpx
import pytest

from afpe.service.app import create_app

GIB = 2**30


def raw_request(base: str, head: str, body_chunks=(), timeout: float = 20.0) -> tuple[int, dict, float]:
    """Send `head` (request line + headers) and then `body_chunks` over one socket, stopping as soon as the
    server answers; (status, JSON body, bytes of body sent)."""
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port), timeout=timeout) as connection:
        connection.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        sent = 0
        connection.setblocking(False)
        answer = b""
        for chunk in body_chunks:
            try:
                answer += connection.recv(65536)
            except BlockingIOError:
                pass
            if answer:
                break
            try:
                connection.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        connection.setblocking(True)
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in answer or not _complete(answer):
            assert time.monotonic() < deadline, answer
            data = connection.recv(65536)
            if not data:
                break
            answer += data
    status_line, _, rest = answer.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(body or b"{}"), sent


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def test_no_token_is_refused_before_a_gigabyte_body_is_sent(make_settings, serve):
    base = serve(create_app(make_settings()))
    multipart = "multipart/form-data; boundary=x"
    for path, kind in (("/api/studies/import", multipart), ("/api/studies", "application/json")):
        started = time.monotonic()
        status, body, sent = raw_request(
            base, f"POST {path} HTTP/1.1\nHost: 127.0.0.1\nContent-Type: {kind}\nContent-Length: {GIB}\n"
        )
        assert status == 401 and "Authorization" in body["error"], body
        assert sent == 0 and time.monotonic() - started < 10, "answered without waiting for the body"


def test_a_dashboard_post_without_the_token_is_refused_before_its_body(make_settings, serve, auth):
    """Issue 30 row 7: an unauthenticated `POST /studies` of 19 MiB (multipart, announced or chunked) is refused
    without reading it; a form whose token is a field is read up to 64 KiB, and its token is checked before any
    other field."""
    base = serve(create_app(make_settings()))
    token = auth["Authorization"].removeprefix("Bearer ")
    started = time.monotonic()
    status, body, sent = raw_request(
        base,
        "POST /studies HTTP/1.1\nHost: 127.0.0.1\nContent-Type: multipart/form-data; boundary=x\n"
        f"Content-Length: {19 * 2**20}\n",
    )
    assert status == 413 and "limit of 65536 bytes" in body["error"], body
    assert sent == 0 and time.monotonic() - started < 10, "answered without waiting for the body"
    part = b'--x\r\nContent-Disposition: form-data; name="overrides"\r\n\r\n'
    status, body, sent = raw_request(
        base,
        "POST /studies HTTP/1.1\nHost: 127.0.0.1\nContent-Type: multipart/form-data; boundary=x\n"
        "Transfer-Encoding: chunked\n",
        body_chunks=[b"%x\r\n%s\r\n" % (len(piece), piece) for piece in [part] + [b"a=1\n" * 8192] * 608],
    )
    assert status == 413 and sent < 10 * 2**20, (status, sent)
    # a form within the limit: the token first (401 whatever the other fields), then the fields (422)
    form = {"spec": "quickstart", "overrides": "x" * 20_000}
    assert httpx.post(f"{base}/studies", data=form).status_code == 401
    assert httpx.post(f"{base}/studies", data={**form, "token": "wrong"}).status_code == 401
    refused = httpx.post(f"{base}/studies", data={**form, "token": token})
    assert refused.status_code == 422 and "overrides: 20000 characters" in refused.json()["error"]
    refused = httpx.post(f"{base}/studies", data={"spec": "../etc", "token": token})
    assert refused.status_code == 422 and "spec: '../etc' must match" in refused.json()["error"]


def test_bodies_over_the_limit_get_413_announced_or_streamed(make_settings, serve, auth):
    base = serve(create_app(make_settings(max_body_bytes=64 * 1024, max_upload_bytes=256 * 1024)))
    bearer = auth["Authorization"]
    # announced: refused from the headers alone
    status, body, sent = raw_request(
        base,
        f"POST /api/studies HTTP/1.1\nHost: 127.0.0.1\nAuthorization: {bearer}\n"
        f"Content-Type: application/json\nContent-Length: {100 * 2**20}\n",
    )
    assert status == 413 and "limit of 65536 bytes" in body["error"] and sent == 0
    # streamed without a length (chunked): refused once the bytes received pass the limit
    part = b'--x\r\nContent-Disposition: form-data; name="file"; filename="t.csv"\r\nContent-Type: text/csv\r\n\r\n'
    rows = b"s_a,value\n" + b"1,0.5\n" * (32 * 1024 // 6)
    status, body, sent = raw_request(
        base,
        f"POST /api/studies/import HTTP/1.1\nHost: 127.0.0.1\nAuthorization: {bearer}\n"
        "Content-Type: multipart/form-data; boundary=x\nTransfer-Encoding: chunked\n",
        body_chunks=[b"%x\r\n%s\r\n" % (len(piece), piece) for piece in [part] + [rows] * 4000],
    )
    assert status == 413 and "limit of 262144 bytes" in body["error"], body
    assert sent < 20 * 2**20, "the server stopped reading long before the 131 MB were sent"
    # a JSON body over the JSON limit, sent whole by an ordinary client
    response = httpx.post(f"{base}/api/studies", content=b"[" + b"1," * 40_000 + b"1]", headers=auth)
    assert response.status_code == 413
    # within the limits the service still works: an import of a small CSV
    response = httpx.post(
        f"{base}/api/studies/import",
        files={"file": ("t.csv", "s_a,s_b,value\n1,2,0.5\n2,1,0.7\n", "text/csv")},
        data={"name": "small"},
        headers=auth,
    )
    assert response.status_code == 201, response.text


def test_foreign_host_headers_are_refused(make_settings, serve):
    """DNS rebinding: a page of attacker.example resolving to 127.0.0.1 sends `Host: attacker.example`."""
    base = serve(create_app(make_settings(allowed_hosts=[])))
    port = urlsplit(base).port
    assert httpx.get(f"{base}/api/studies", headers={"Host": "attacker.example"}).status_code == 400
    assert httpx.get(f"{base}/", headers={"Host": f"attacker.example:{port}"}).status_code == 400
    for host in ("127.0.0.1", "localhost", f"localhost:{port}"):
        assert httpx.get(f"{base}/api/studies", headers={"Host": host}).status_code == 200, host
    other = serve(create_app(make_settings(allowed_hosts=["sweep.internal"])))
    assert httpx.get(f"{other}/healthz", headers={"Host": "sweep.internal"}).status_code == 200


def test_short_tokens_are_refused(make_settings, afpe_executable, user_env, tmp_path):
    with pytest.raises(ValueError, match="at least 32"):
        create_app(make_settings(api_token="a"))
    env = {**user_env, "AFPE_API_TOKEN": "a" * 31, "AFPE_STORAGE": f"sqlite:///{tmp_path / 's.db'}"}
    result = subprocess.run([afpe_executable, "serve"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "at least 32" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
