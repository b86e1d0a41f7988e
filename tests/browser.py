"""A headless Chromium driven over the DevTools protocol, for the tests that open pages in a real
browser (the HTML reports: tests/analysis/test_report_browser.py; the documentation site:
tests/test_docs.py).

Chromium talks DevTools over ``--remote-debugging-pipe`` (file descriptors 3 and 4, JSON messages
ended by NUL), so no port is opened and no client library is needed. Without a Chromium binary the
``browser`` fixture skips its tests, with the reason.
"""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

_BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str:
    """The path of a Chromium (or Chrome) binary, or a skip saying how to get one."""
    path = os.environ.get("VWM_CHROMIUM") or next(
        (found for name in _BINARIES if (found := shutil.which(name))), None
    )
    if path is None:
        pytest.skip(
            "no Chromium browser found (install Debian's package: apt-get install chromium;"
            " or set VWM_CHROMIUM to a Chrome/Chromium binary)"
        )
    return path


class DevTools:
    """A minimal DevTools-protocol client of a headless Chromium over a pipe."""

    def __init__(self, binary: str, profile: Path, timeout: float = 60.0) -> None:
        self.timeout = timeout
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()

        def wire_fds() -> None:  # in the child: the pipe ends Chromium expects as fds 3 and 4
            # (os.dup2 makes them inheritable; every other descriptor is close-on-exec)
            read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        args = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--mute-audio",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._out = os.fdopen(to_browser_w, "wb", buffering=0)
        self._in = os.fdopen(from_browser_r, "rb", buffering=0)
        self._messages: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next_id = 0
        self.events: list[dict] = []

    def _read(self) -> None:
        buffer = b""
        while chunk := self._in.read(65536):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for message in messages:
                self._messages.put(json.loads(message))
        self._messages.put(None)  # the browser closed the pipe

    def _receive(self) -> dict:
        try:
            message = self._messages.get(timeout=self.timeout)
        except queue.Empty:
            raise AssertionError(f"Chromium did not answer within {self.timeout} s") from None
        if message is None:
            raise AssertionError(f"Chromium exited (status {self.process.poll()})")
        return message

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Call ``method`` and return its result; events that arrive meanwhile go to ``events``."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self._out.write(json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        """The first event ``method`` (already received or the next to come)."""
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._receive()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def open(self, url: str, width: int = 1200, height: int = 900) -> str:
        """A new page showing ``url`` (loaded), with console, log and network events on."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired")
        return session

    def evaluate(self, session: str, expression: str):
        """The value of a JavaScript expression (promises awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=session,
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, session: str, clip: dict | None = None) -> np.ndarray:
        """The page (or ``clip``) as an RGB array."""
        from PIL import Image

        params: dict = {"format": "png"}
        if clip is not None:
            params.update(clip={**clip, "scale": 1}, captureBeyondViewport=True)
        data = base64.b64decode(
            self.send("Page.captureScreenshot", params, session=session)["data"]
        )
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors seen so far."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        return found

    def requests(self) -> list[str]:
        """URLs of every request the page made."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except AssertionError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tools = DevTools(chromium(), tmp_path_factory.mktemp("chromium-profile"))
    try:
        tools.send("Browser.getVersion")
        yield tools
    finally:
        tools.close()
