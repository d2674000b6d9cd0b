"""The served kiosk (`lobbypay kiosk --serve`) in headless Chromium, as the kiosk browser has it.

The test starts the real command with a configuration directory, opens the
page in Debian's ``chromium`` through the DevTools protocol, and checks that
the welcome screen arrives over the page's websocket and is drawn: the welcome
text is in the frames the browser received, and a screenshot is taken (kept
in the test's temporary directory).
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
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.kiosk.support import SERVICE_PIN_HASH, make_settings

REPO = Path(__file__).resolve().parents[2]
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
PAGE_TIMEOUT_S = 45.0

# `make test` installs chromium; on CI a missing browser is a failure, not a skip.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="Debian package chromium not installed",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config_dir(root: Path) -> Path:
    settings = make_settings(root)  # writes the catalog and the card key under root/data
    config = root / "etc"
    config.mkdir()
    (config / "local.toml").write_text(
        "[terminal]\n"
        f'data_dir = "{settings.terminal.data_dir}"\n'
        'label = "Lobby 1"\n'
        "[deployment]\n"
        'id = "brn"\n'
        "[kiosk]\n"
        f'service_pin_hash = "{SERVICE_PIN_HASH}"\n',
        encoding="utf-8",
    )
    return config


async def _wait_port(port: int, timeout_s: float) -> None:
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
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.frames: list[str] = []
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            elif data.get("method") == "Network.webSocketFrameReceived":
                response = data["params"]["response"]
                payload = response["payloadData"]
                if response.get("opcode") == 2:
                    payload = base64.b64decode(payload).decode("utf-8", "replace")
                self.frames.append(payload)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        return await asyncio.wait_for(future, PAGE_TIMEOUT_S)

    def received_text(self) -> str:
        # Strip the escape sequences so the text between them reads as on screen.
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", "".join(self.frames))


async def test_served_kiosk_shows_welcome_in_headless_chromium(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    config = _config_dir(tmp_path)
    port = _free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "firmware_config.dispatch",
        "kiosk",
        "--serve",
        "--config-dir",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # the app processes textual-serve starts die with it
    )
    browser = None
    try:
        await _wait_port(port, START_TIMEOUT_S)
        profile = tmp_path / "chromium-profile"
        browser = await asyncio.create_subprocess_exec(
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        endpoint = await _devtools_url(browser)
        debug_port = int(endpoint.split(":")[2].split("/")[0])
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{debug_port}/json") as resp:
                targets = await resp.json(content_type=None)
            page = next(t for t in targets if t.get("type") == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                cdp = Cdp(ws)
                await cdp.call("Network.enable")
                await cdp.call("Page.enable")
                await cdp.call("Page.navigate", url=f"http://127.0.0.1:{port}/")
                deadline = time.monotonic() + PAGE_TIMEOUT_S
                while "Добро пожаловать" not in cdp.received_text():
                    assert time.monotonic() < deadline, cdp.received_text()[-2000:]
                    await asyncio.sleep(0.2)
                text = cdp.received_text()
                assert "Оплата коммунальных услуг" in text
                assert "Найти" in text
                # The terminal in the page draws what arrived.
                await asyncio.sleep(1.0)
                shot = await cdp.call("Page.captureScreenshot", format="png")
                png = base64.b64decode(shot["result"]["data"])
                assert png.startswith(b"\x89PNG\r\n\x1a\n")
                (tmp_path / "served-welcome.png").write_bytes(png)
                assert len(png) > 10_000  # a drawn screen, not a blank page
                cdp.reader.cancel()
    finally:
        for proc in (browser, server):
            if proc is None or proc.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
