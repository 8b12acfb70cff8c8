"""Open an HTML file in headless Chromium and evaluate JavaScript in it over the DevTools protocol.

Tests use it to check what a user sees in a report: that it loads, and that its figures decode to images.
Chromium is Debian's `chromium`; CI installs it (tests skip where it is absent unless
CONNECTOME_BPU_REQUIRE_CHROMIUM is set, as in CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        if os.environ.get("CONNECTOME_BPU_REQUIRE_CHROMIUM"):
            raise AssertionError("headless Chromium is required here (apt-get install chromium)")
        pytest.skip("headless Chromium is not installed")
    return found


class Page:
    """One DevTools session on a page: ``evaluate`` runs JavaScript and returns its (JSON) value."""

    def __init__(self, socket):
        self._socket, self._id = socket, 0

    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        self._id += 1
        self._socket.send(json.dumps({"id": self._id, "method": "Runtime.evaluate",
                                      "params": {"expression": expression, "returnByValue": True,
                                                 "awaitPromise": True, "timeout": int(timeout * 1000)}}))
        while True:
            reply = json.loads(self._socket.recv())
            if reply.get("id") == self._id:
                result = reply["result"]
                if "exceptionDetails" in result:
                    raise AssertionError(f"JavaScript failed: {result['exceptionDetails']}")
                return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy; its last value otherwise (the caller asserts on it)."""
        deadline, value = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        return value


@contextmanager
def open_page(html: Path, profile: Path) -> Iterator[Page]:
    """Headless Chromium on ``html`` (a file), with a throw-away profile; the page's DevTools session."""
    import websocket  # websocket-client, a test dependency

    proc = subprocess.Popen([chromium_path(), "--headless=new", "--no-sandbox", "--disable-gpu",
                             "--remote-debugging-port=0", f"--user-data-dir={profile}", html.resolve().as_uri()],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            match = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = int(match.group(1)) if match else None
            if not line and proc.poll() is not None:
                raise AssertionError(f"chromium exited with {proc.returncode}")
        assert port, "chromium did not report a DevTools port"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json") as reply:
            page = next(t for t in json.load(reply) if t["type"] == "page")
        socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        try:
            yield Page(socket)
        finally:
            socket.close()
    finally:
        proc.kill()
        proc.wait()
