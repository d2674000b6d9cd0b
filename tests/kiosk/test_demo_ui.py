"""The demo kiosk: its data directory, its instructions, and paying as the instructions say."""

from __future__ import annotations

from pathlib import Path

from kiosk.app import KioskApp
from kiosk.demo_ui import DEMO_PIN, instructions, prepare_demo_kiosk
from kiosk.devices import DeviceChoice
from kiosk.pin import verify_pin
from tests.kiosk.pilot import SIZE, TEST_TIMEOUTS, on_screen, started


def test_instructions_name_the_accounts_cards_and_pin() -> None:
    for lang in ("ru", "en"):
        text = "\n".join(instructions(lang))
        for number in ("1000000008", "1000000016", "1000000024"):
            assert number in text
        assert "F5" in text
        assert DEMO_PIN in text


async def test_demo_kiosk_card_key_and_catalog_work(tmp_path: Path) -> None:
    settings = prepare_demo_kiosk(tmp_path / "kiosk", lang="en")
    assert settings.kiosk.languages == ["en", "ru"]
    assert verify_pin(DEMO_PIN, settings.kiosk.service_pin_hash.get_secret_value())
    again = prepare_demo_kiosk(tmp_path / "kiosk", lang="en")  # idempotent: catalog kept
    assert again.terminal.data_dir == settings.terminal.data_dir
    app = KioskApp(
        settings,
        devices=DeviceChoice(card_reader="simulator", scanner="simulator"),
        terminal_timeouts=TEST_TIMEOUTS,
    )
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.lang == "en"
        await pilot.press("f5")  # the first demo card, as the instructions say
        await on_screen(pilot, app, "ServicesScreen")
        assert app.session is not None
        assert app.session.virtual_number == "1000000008"
        await pilot.press("escape")
        await on_screen(pilot, app, "WelcomeScreen")
        await pilot.press("f7")  # the demo bill
        await on_screen(pilot, app, "ServicesScreen")
        assert app.session is not None
        assert app.session.bill_sum_minor == 500_000
