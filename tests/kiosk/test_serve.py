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
import re
import sys
import time
from pathlib import Path
from typing import Any

from tests.kiosk.support import SERVICE_PIN_HASH, make_settings
from tests.support.cdp import (
    START_TIMEOUT_S,
    Cdp,
    chromium,
    free_port,
    requires_chromium,
    stop_process_group,
    wait_port,
)

REPO = Path(__file__).resolve().parents[2]
PAGE_TIMEOUT_S = 45.0

pytestmark = requires_chromium


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


def _collect_frames(cdp: Cdp) -> list[str]:
    """The payloads of the page's websocket frames, as they arrive."""
    frames: list[str] = []

    def received(params: dict[str, Any]) -> None:
        response = params["response"]
        payload = response["payloadData"]
        if response.get("opcode") == 2:
            payload = base64.b64decode(payload).decode("utf-8", "replace")
        frames.append(payload)

    cdp.on("Network.webSocketFrameReceived", received)
    return frames


def _screen_text(frames: list[str]) -> str:
    # Strip the escape sequences so the text between them reads as on screen.
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", "".join(frames))


async def test_served_kiosk_shows_welcome_in_headless_chromium(tmp_path: Path) -> None:
    config = _config_dir(tmp_path)
    port = free_port()
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
    try:
        await wait_port(port, START_TIMEOUT_S)
        async with chromium(tmp_path / "chromium-profile") as browser:
            page_url = await browser.first_page()
            async with browser.http.ws_connect(page_url, max_msg_size=0) as ws:
                cdp = Cdp(ws)
                frames = _collect_frames(cdp)
                await cdp.call("Network.enable")
                await cdp.call("Page.enable")
                await cdp.call("Page.navigate", url=f"http://127.0.0.1:{port}/")
                deadline = time.monotonic() + PAGE_TIMEOUT_S
                while "Добро пожаловать" not in _screen_text(frames):
                    assert time.monotonic() < deadline, _screen_text(frames)[-2000:]
                    await asyncio.sleep(0.2)
                text = _screen_text(frames)
                assert "Оплата коммунальных услуг" in text
                assert "Найти" in text
                # The terminal in the page draws what arrived.
                await asyncio.sleep(1.0)
                png = await cdp.screenshot()
                (tmp_path / "served-welcome.png").write_bytes(png)
                assert png.startswith(b"\x89PNG\r\n\x1a\n")
                assert len(png) > 10_000  # a drawn screen, not a blank page
                cdp.close()
    finally:
        await stop_process_group(server)
