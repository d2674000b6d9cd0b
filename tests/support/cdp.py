"""Debian's headless Chromium driven over the Chrome DevTools Protocol, for browser tests.

No Selenium or Playwright: Chromium is started with ``--remote-debugging-port=0``,
its DevTools endpoint is read from its stderr, and :class:`Cdp` speaks the
protocol's JSON messages over the page's websocket (commands with ids, events
by method name). Used by the served kiosk's test and the operator console's.

On CI (``CI=true``) a missing browser fails the test; elsewhere it is skipped
(:data:`requires_chromium`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,800",
)
START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 45.0
EVENTS_KEPT_MAX = 10_000

# `make test` installs chromium; on CI a missing browser is a failure, not a skip.
requires_chromium = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="Debian package chromium not installed",
)


class CdpError(AssertionError):
    """The browser answered a command with an error."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_port(port: int, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise AssertionError(f"nothing listens on port {port} after {timeout_s} s")


async def stop_process_group(proc: asyncio.subprocess.Process | None) -> None:
    """SIGTERM the process's group (it was started with a new session), then SIGKILL."""
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


async def _devtools_url(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(proc.stderr.readline(), START_TIMEOUT_S)
        if not line:
            break
        match = re.search(rb"DevTools listening on (ws://\S+)", line)
        if match:
            return match.group(1).decode()
    raise AssertionError("chromium did not start its DevTools endpoint")


class Cdp:
    """A minimal Chrome DevTools Protocol client over one websocket (a page or the browser)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: deque[dict[str, Any]] = deque(maxlen=EVENTS_KEPT_MAX)
        self.handlers: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.changed = asyncio.Event()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
                continue
            method = data.get("method")
            if method is None:
                continue
            self.events.append(data)
            for handler in self.handlers.get(method, ()):
                handler(data["params"])
            self.changed.set()

    def on(self, method: str, handler: Callable[[dict[str, Any]], None]) -> None:
        """Call ``handler(params)`` for every later event ``method``."""
        self.handlers.setdefault(method, []).append(handler)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and return its ``result`` (CdpError if the browser refused it)."""
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        answer = await asyncio.wait_for(future, CALL_TIMEOUT_S)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def wait_event(
        self, method: str, timeout_s: float = CALL_TIMEOUT_S, *, after: int = 0
    ) -> dict[str, Any]:
        """The first ``method`` event among those received after the ``after``-th one."""
        deadline = time.monotonic() + timeout_s
        while True:
            for event in list(self.events)[after:]:
                if event["method"] == method:
                    return dict(event["params"])
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {method} event within {timeout_s} s"
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def navigate(self, url: str) -> None:
        """Open ``url`` and wait until the page has loaded."""
        mark = len(self.events)
        await self.call("Page.navigate", url=url)
        await self.wait_event("Page.loadEventFired", after=mark)

    async def until(
        self, expression: str, timeout_s: float = CALL_TIMEOUT_S, step_s: float = 0.1
    ) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"still false after {timeout_s} s: {expression}"
            await asyncio.sleep(step_s)

    async def screenshot(self) -> bytes:
        """A PNG of the page as drawn."""
        shot = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["data"])

    def close(self) -> None:
        self.reader.cancel()


class Browser:
    """A running headless Chromium and a CDP session on the browser itself."""

    def __init__(self, http: aiohttp.ClientSession, cdp: Cdp, debug_port: int) -> None:
        self.http = http
        self.cdp = cdp
        self.debug_port = debug_port

    @contextlib.asynccontextmanager
    async def page(self, *, downloads: Path | None = None) -> AsyncIterator[Cdp]:
        """A page in a browser context of its own (its own cookies, like another browser).

        With ``downloads``, files the page downloads are saved in that directory.
        """
        context = (await self.cdp.call("Target.createBrowserContext"))["browserContextId"]
        if downloads is not None:
            await self.cdp.call(
                "Browser.setDownloadBehavior",
                behavior="allow",
                downloadPath=str(downloads),
                browserContextId=context,
                eventsEnabled=True,
            )
        target = await self.cdp.call(
            "Target.createTarget", url="about:blank", browserContextId=context
        )
        url = f"ws://127.0.0.1:{self.debug_port}/devtools/page/{target['targetId']}"
        try:
            async with self.http.ws_connect(url, max_msg_size=0) as ws:
                cdp = Cdp(ws)
                try:
                    await cdp.call("Page.enable")
                    await cdp.call("Runtime.enable")
                    yield cdp
                finally:
                    cdp.close()
        finally:
            with contextlib.suppress(CdpError, TimeoutError):
                await self.cdp.call("Target.disposeBrowserContext", browserContextId=context)

    async def first_page(self) -> str:
        """The websocket URL of the page Chromium opened at start."""
        async with self.http.get(f"http://127.0.0.1:{self.debug_port}/json") as resp:
            targets = await resp.json(content_type=None)
        page = next(t for t in targets if t.get("type") == "page")
        return str(page["webSocketDebuggerUrl"])


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Browser]:
    """A headless Chromium with its DevTools endpoint, stopped (its process group) on exit."""
    assert CHROMIUM is not None, "chromium is required (Debian package chromium)"
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        endpoint = await _devtools_url(process)
        debug_port = int(endpoint.split(":")[2].split("/")[0])
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(endpoint, max_msg_size=0) as ws,
        ):
            cdp = Cdp(ws)
            try:
                yield Browser(http, cdp, debug_port)
            finally:
                cdp.close()
    finally:
        await stop_process_group(process)
