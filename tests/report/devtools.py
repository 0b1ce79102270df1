"""Headless Chromium driven over the DevTools protocol (aiohttp websocket): lays a page out and measures it; for test_report_screen.

Chromium picks its own debugging port (``--remote-debugging-port=0``) and writes it to
``DevToolsActivePort`` in its profile directory: no port is guessed. Every wait is bounded; the
browser runs in its own process group, killed by that group's id on exit.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
START_TIMEOUT_S = 45.0  # a cold start on 2 busy cores takes 5-10 s
CALL_TIMEOUT_S = 30.0


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


class Browser:
    """One headless Chromium with a blank page, its viewport ``width`` x ``height`` CSS pixels."""

    def __init__(self, executable: str, profile: Path, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.profile = profile
        args = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--hide-scrollbars", "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0", f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]
        self.log = (profile.parent / "chromium.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def port(self) -> int:
        """The debugging port Chromium chose, read from its profile once it is listening."""
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited {self.proc.returncode}: see {self.log.name}")
            lines = marker.read_text().splitlines() if marker.exists() else []
            if lines and lines[0].strip().isdigit():
                return int(lines[0])
            time.sleep(0.1)
        raise TimeoutError(f"chromium did not listen within {START_TIMEOUT_S:g} s: see {self.log.name}")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group of the browser started here, by its id
        self.proc.wait(timeout=10)
        self.log.close()


class Page:
    """The browser's first page over its websocket: send a command, wait for its answer or an event."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=CALL_TIMEOUT_S)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result") or {})
            self.events.append(msg)

    async def wait_event(self, method: str) -> None:
        if any(e.get("method") == method for e in self.events):
            return
        while (await self.ws.receive_json(timeout=CALL_TIMEOUT_S)).get("method") != method:
            pass


async def _measure(port: int, url: str, width: int, height: int, script: str) -> tuple[Any, bytes]:
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json()
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
        async with session.ws_connect(ws_url, max_msg_size=0) as ws:
            page = Page(ws)
            await page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
            await page.call("Page.enable")
            await page.call("Page.navigate", url=url)
            await page.wait_event("Page.loadEventFired")
            result = await page.call("Runtime.evaluate", expression=script, returnByValue=True)
            if "exceptionDetails" in result:
                raise RuntimeError(f"script failed: {result['exceptionDetails']}")
            shot = await page.call("Page.captureScreenshot", format="png")
            return json.loads(result["result"]["value"]), base64.b64decode(shot["data"])


def measure(executable: str, workdir: Path, url: str, script: str, width: int = 1280, height: int = 1000) -> tuple[Any, bytes]:
    """Open ``url`` at ``width`` x ``height``, evaluate ``script`` (it returns a JSON string) and take a screenshot of the first screen."""
    browser = Browser(executable, workdir / "profile", width, height)
    try:
        port = browser.port()
        return asyncio.run(asyncio.wait_for(_measure(port, url, width, height, script), timeout=4 * CALL_TIMEOUT_S))
    finally:
        browser.close()
