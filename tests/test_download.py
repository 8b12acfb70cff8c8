"""``connectome_bpu.sources.download``: against a real HTTP server on 127.0.0.1 whose behaviour each test scripts.

The server speaks plain HTTP/1.0 (one request per connection), answers ``Range`` requests like Zenodo
does (206 + ``Content-Range``), and can instead fail with 500/404, cut the body short, stall, ignore the
range or serve different bytes. Every request it sees is recorded, so the tests can assert what the
client asked for, not only what it ended up with.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from connectome_bpu.sources.download import (DownloadError, ExpectedFile, describe_mismatch, fetch, md5_file,
                                              verify)

FAST = {"backoff_seconds": 0.01, "timeout": 5.0, "chunk_bytes": 4096}


class _Handler(BaseHTTPRequestHandler):
    """Answers every GET with the next action of the server's plan (then its default action)."""

    def log_message(self, *args) -> None:   # keep pytest output clean
        pass

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            action = state.plan.pop(0) if state.plan else state.default
            state.requests.append({"path": self.path, "range": self.headers.get("Range"), "action": action})
        body = state.body
        if action == "500":
            self._status_only(500)
        elif action == "404":
            self._status_only(404)
        elif action == "ignore_range":
            self._send(200, body, {})
        elif action == "other":
            self._send(200, state.other, {})
        else:   # serve / drop / stall: a range-honouring answer, possibly cut short
            start = self._range_start()
            if start is not None and start >= len(body):
                self._status_only(416, {"Content-Range": f"bytes */{len(body)}"})
                return
            if start is None:
                status, payload, headers = 200, body, {}
            else:
                status, payload = 206, body[start:]
                headers = {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}
            self._send(status, payload, headers, cut=action in ("drop", "stall"), stall=action == "stall")

    def _range_start(self) -> int | None:
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        return int(match.group(1)) if match else None

    def _status_only(self, status: int, headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, payload: bytes, headers: dict, *, cut: bool = False, stall: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if cut:
            self.wfile.write(payload[:len(payload) // 2])
            self.wfile.flush()
            if stall:
                time.sleep(1.5)   # longer than the client's timeout; the connection then just closes
            return
        self.wfile.write(payload)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.body = b""
        self.other = b""
        self.plan: list[str] = []
        self.default = "serve"
        self.requests: list[dict] = []


class Server:
    """A scripted server: ``serve(body, plan=[...], default=...)`` then fetch ``url``."""

    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.state = _State()
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/files/{name}?download=1"

    def serve(self, body: bytes, *, plan: list[str] | None = None, default: str = "serve",
              other: bytes | None = None) -> None:
        state = self.httpd.state
        state.body, state.plan, state.default = body, list(plan or []), default
        state.other = other if other is not None else bytes(len(body))

    @property
    def requests(self) -> list[dict]:
        return self.httpd.state.requests

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


def _npy_bytes() -> bytes:
    """A root-id-like file: 18-digit uint64 ids, as FlyWire's .npy may hold them."""
    buffer = io.BytesIO()
    np.save(buffer, np.arange(6000, dtype=np.uint64) * np.uint64(7919) + np.uint64(720575940600000000))
    return buffer.getvalue()


def _feather_bytes() -> bytes:
    rng = np.random.default_rng(0)
    table = pa.table({"pre_pt_root_id": rng.integers(0, 2**62, 3000), "post_pt_root_id": rng.integers(0, 2**62, 3000),
                      "syn_count": rng.integers(1, 50, 3000).astype(np.int32)})
    sink = io.BytesIO()
    feather.write_feather(table, sink, compression="uncompressed")
    return sink.getvalue()


@pytest.fixture(params=["npy", "feather"])
def payload(request) -> tuple[str, bytes]:
    return ("roots.npy", _npy_bytes()) if request.param == "npy" else ("conn.feather", _feather_bytes())


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _expected(name: str, body: bytes) -> ExpectedFile:
    return ExpectedFile(name, len(body), _md5(body))


def _part(dest: Path) -> Path:
    return dest.with_suffix(dest.suffix + ".part")


def test_clean_download(server, tmp_path, payload):
    name, body = payload
    server.serve(body)
    dest = tmp_path / "cache" / name
    assert fetch(server.url(name), dest, _expected(name, body), **FAST) == dest
    assert dest.read_bytes() == body
    assert not _part(dest).exists()
    assert [r["range"] for r in server.requests] == [None]


def test_partial_file_is_resumed_with_a_range_request(server, tmp_path, payload):
    name, body = payload
    server.serve(body)
    dest = tmp_path / name
    half = len(body) // 2
    _part(dest).write_bytes(body[:half])
    fetch(server.url(name), dest, _expected(name, body), **FAST)
    assert [r["range"] for r in server.requests] == [f"bytes={half}-"]
    assert verify(dest, _expected(name, body)) is None
    assert not _part(dest).exists()


def test_connection_dropped_mid_body_resumes_where_it_stopped(server, tmp_path, caplog):
    body = _npy_bytes()
    server.serve(body, plan=["drop"])
    dest = tmp_path / "roots.npy"
    with caplog.at_level(logging.WARNING, logger="connectome_bpu.sources.download"):
        fetch(server.url("roots.npy"), dest, _expected("roots.npy", body), **FAST)
    assert dest.read_bytes() == body
    assert [r["range"] for r in server.requests] == [None, f"bytes={len(body) // 2}-"]
    assert "attempt 1 of 6 failed" in caplog.text and "resuming the partial file" in caplog.text


def test_stalled_transfer_times_out_and_resumes(server, tmp_path):
    body = _feather_bytes()
    server.serve(body, plan=["stall"])
    dest = tmp_path / "conn.feather"
    fetch(server.url("conn.feather"), dest, _expected("conn.feather", body), **dict(FAST, timeout=0.3))
    assert dest.read_bytes() == body
    first, second = (r["range"] for r in server.requests)
    # Resumed from what reached the file: whole chunks before the stall (a chunk cut by it is re-read).
    assert first is None and 0 < int(re.fullmatch(r"bytes=(\d+)-", second).group(1)) <= len(body) // 2


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    body = _npy_bytes()
    server.serve(body, plan=["ignore_range"])
    dest = tmp_path / "roots.npy"
    _part(dest).write_bytes(body[:1000])
    fetch(server.url("roots.npy"), dest, _expected("roots.npy", body), **FAST)
    assert dest.read_bytes() == body   # not the first 1000 bytes twice
    assert [r["range"] for r in server.requests] == ["bytes=1000-"]


@pytest.mark.parametrize("other", ["same_size", "longer", "shorter"])
def test_wrong_bytes_from_the_server_fail_at_once_with_both_checksums(server, tmp_path, other):
    """A whole file from one response that does not verify is what the server serves: no retry, one error."""
    body = _feather_bytes()
    wrong = {"same_size": bytes(len(body)), "longer": body + b"trailing junk", "shorter": body[:-100]}[other]
    server.serve(body, default="other", other=wrong)
    dest = tmp_path / "conn.feather"
    url = server.url("conn.feather")
    with pytest.raises(DownloadError) as caught:
        fetch(url, dest, _expected("conn.feather", body), retries=2, **FAST)
    message = str(caught.value)
    assert message.startswith("conn.feather: ") and url in message and str(dest) in message
    assert f"expected {len(body)} bytes, md5 {_md5(body)}; got {len(wrong)} bytes, md5 {_md5(wrong)}" in message
    assert caught.value.mismatch is not None and caught.value.url == url
    assert len(server.requests) == 1 and server.requests[0]["range"] is None
    assert not dest.exists() and not _part(dest).exists()
    assert list(tmp_path.iterdir()) == []


def test_resumed_file_that_fails_verification_is_fetched_again_from_zero(server, tmp_path):
    """A stale partial file with wrong bytes spoils the resumed file; one download from zero repairs it."""
    body = _npy_bytes()
    server.serve(body)
    dest = tmp_path / "roots.npy"
    half = len(body) // 2
    _part(dest).write_bytes(bytes(half))
    fetch(server.url("roots.npy"), dest, _expected("roots.npy", body), **FAST)
    assert dest.read_bytes() == body
    assert [r["range"] for r in server.requests] == [f"bytes={half}-", None]


def test_server_error_then_success(server, tmp_path, caplog):
    body = _npy_bytes()
    server.serve(body, plan=["500", "500"])
    dest = tmp_path / "roots.npy"
    with caplog.at_level(logging.WARNING, logger="connectome_bpu.sources.download"):
        fetch(server.url("roots.npy"), dest, _expected("roots.npy", body), retries=3, **FAST)
    assert dest.read_bytes() == body
    assert [r["action"] for r in server.requests] == ["500", "500", "serve"]
    assert caplog.text.count("HTTP 500") == 2


def test_server_that_keeps_failing_gives_a_clear_error_with_backoff(server, tmp_path, caplog):
    body = _npy_bytes()
    server.serve(body, default="500")
    dest = tmp_path / "roots.npy"
    url = server.url("roots.npy")
    with caplog.at_level(logging.WARNING, logger="connectome_bpu.sources.download"), \
            pytest.raises(DownloadError) as caught:
        fetch(url, dest, _expected("roots.npy", body), retries=3, **FAST)
    message = str(caught.value)
    assert url in message and "roots.npy" in message and "4 attempt(s)" in message and "HTTP 500" in message
    assert len(server.requests) == 4
    assert re.findall(r"retrying in ([0-9.]+) s", caplog.text) == ["0.01", "0.02", "0.04"]
    assert list(tmp_path.iterdir()) == []


def test_not_found_fails_at_once(server, tmp_path):
    server.serve(b"", default="404")
    dest = tmp_path / "missing.npy"
    with pytest.raises(DownloadError, match=r"1 attempt\(s\).*HTTP 404"):
        fetch(server.url("missing.npy"), dest, ExpectedFile("missing.npy", 10, None), retries=5, **FAST)
    assert len(server.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_is_retried_then_reported(tmp_path):
    with socket.socket() as probe:   # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/files/x.npy"
    with pytest.raises(DownloadError, match=r"2 attempt\(s\).*connection failed"):
        fetch(url, tmp_path / "x.npy", ExpectedFile("x.npy", 10, None), retries=1, **FAST)


def test_existing_correct_file_is_reused_without_any_request(server, tmp_path):
    body = _npy_bytes()
    server.serve(body)
    dest = tmp_path / "roots.npy"
    dest.write_bytes(body)
    assert fetch(server.url("roots.npy"), dest, _expected("roots.npy", body), **FAST) == dest
    assert server.requests == []


@pytest.mark.parametrize("corrupt", ["same_size", "truncated", "longer"])
def test_existing_corrupt_file_is_fetched_again(server, tmp_path, corrupt, caplog):
    body = _npy_bytes()
    server.serve(body)
    dest = tmp_path / "roots.npy"
    dest.write_bytes({"same_size": bytes(len(body)), "truncated": body[:100], "longer": body + b"x"}[corrupt])
    with caplog.at_level(logging.WARNING, logger="connectome_bpu.sources.download"):
        fetch(server.url("roots.npy"), dest, _expected("roots.npy", body), **FAST)
    assert dest.read_bytes() == body
    assert [r["range"] for r in server.requests] == [None]
    assert "does not verify" in caplog.text and "downloading again" in caplog.text


def test_corrupt_cached_file_is_refetched_with_retries_and_resume(server, tmp_path):
    """The fresh download of a corrupt cached file gets the full machinery: a dropped connection is
    resumed from the ``.part`` with a Range request, and the result is verified before the rename."""
    body = _feather_bytes()
    server.serve(body, plan=["drop"])
    dest = tmp_path / "conn.feather"
    dest.write_bytes(bytes(len(body)))
    fetch(server.url("conn.feather"), dest, _expected("conn.feather", body), **FAST)
    assert dest.read_bytes() == body
    assert [r["range"] for r in server.requests] == [None, f"bytes={len(body) // 2}-"]
    assert not _part(dest).exists()


def test_corrupt_cached_file_and_wrong_server_bytes_give_one_clear_error(server, tmp_path):
    body = _npy_bytes()
    wrong = bytes(len(body))
    server.serve(body, default="other", other=wrong)
    dest = tmp_path / "roots.npy"
    dest.write_bytes(body[:-1] + b"!")
    url = server.url("roots.npy")
    with pytest.raises(DownloadError) as caught:
        fetch(url, dest, _expected("roots.npy", body), retries=3, **FAST)
    message = str(caught.value)
    assert "roots.npy" in message and url in message
    assert f"expected {len(body)} bytes, md5 {_md5(body)}" in message and f"md5 {_md5(wrong)}" in message
    assert len(server.requests) == 1
    assert list(tmp_path.iterdir()) == []   # the corrupt copy is gone and nothing unverified replaced it


def test_complete_part_is_verified_locally_and_oversized_part_discarded(server, tmp_path):
    body = _npy_bytes()
    server.serve(body)
    complete = tmp_path / "a.npy"
    _part(complete).write_bytes(body)   # a previous run died between transfer and rename
    fetch(server.url("a.npy"), complete, _expected("a.npy", body), **FAST)
    assert complete.read_bytes() == body and server.requests == []

    oversized = tmp_path / "b.npy"
    _part(oversized).write_bytes(body + b"extra")
    fetch(server.url("b.npy"), oversized, _expected("b.npy", body), **FAST)
    assert oversized.read_bytes() == body
    assert [r["range"] for r in server.requests] == [None]


def test_range_not_satisfiable_means_complete_when_size_is_unpinned(server, tmp_path):
    body = _feather_bytes()
    server.serve(body)
    expected = ExpectedFile("c.feather", None, _md5(body))
    dest = tmp_path / "c.feather"
    _part(dest).write_bytes(body)
    fetch(server.url("c.feather"), dest, expected, **FAST)
    assert dest.read_bytes() == body
    assert [r["range"] for r in server.requests] == [f"bytes={len(body)}-"]   # answered 416


def test_verify_and_md5(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 10)
    digest = md5_file(path)
    assert digest == _md5(b"x" * 10)
    assert verify(path, ExpectedFile("f.bin", 10, digest)) is None
    assert verify(path, ExpectedFile("f.bin", 10, digest.upper())) is None
    assert verify(path, ExpectedFile("f.bin", 20, digest)) == "size 10 != 20 bytes"
    assert verify(path, ExpectedFile("f.bin", None, "0" * 32)).startswith(f"md5 {digest} != ")
    assert "does not exist" in verify(tmp_path / "nope", ExpectedFile("nope", None, None))
    # The error text always shows both sizes and both digests, even when the size alone differs.
    assert describe_mismatch(path, ExpectedFile("f.bin", 20, "A" * 32)) == \
        f"expected 20 bytes, md5 {'a' * 32}; got 10 bytes, md5 {digest}"
