"""Pilot tests of meter readings, the statement, the PIN and service mode."""

from __future__ import annotations

from pathlib import Path

from central_sync.journal import Journal
from drivers.escpos.document import TextLine
from kiosk.i18n import money
from tests.kiosk.pilot import SIZE, identify, make_app, on_screen, started, tap, text_of, until
from tests.kiosk.support import IVANOVA, PETROV, SERVICE_PIN


async def _readings(path: Path) -> list[dict[str, object]]:
    journal = await Journal.open(path)
    try:
        return [dict(e.body) for e in await journal.read(1, 100) if e.kind == "meter-reading"]
    finally:
        await journal.close()


async def _press(pilot, keys: str) -> None:  # type: ignore[no-untyped-def]
    for key in keys:
        await tap(pilot, "#key-point" if key == "," else f"#key-{key}")


# --------------------------------------------------------------------------- meters


async def test_meter_reading_accepted_and_added_to_history(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await identify(pilot, app, IVANOVA)
        await tap(pilot, "#meters")
        await on_screen(pilot, app, "MetersScreen")
        assert "123,456 m3 (2025-05-23)" in text_of(app, "#previous")
        await _press(pilot, "130,5")
        assert text_of(app, "#entry") == "130,5"
        await tap(pilot, "#submit")
        await until(pilot, lambda: "принято" in text_of(app, "#result"))
        assert "Расход: 7,044 m3" in text_of(app, "#result")
        table = app.screen.query_one("#history")
        assert table.row_count == 2
        assert "7,044 m3" in text_of(app, "#chart")
        assert "█" in text_of(app, "#chart")
    readings = await _readings(app.settings.journal_path)
    assert len(readings) == 1
    assert readings[0]["meter_id"] == "10457736"
    assert readings[0]["reading_milli"] == 130_500
    assert readings[0]["previous_milli"] == 123_456
    assert readings[0]["account"] == IVANOVA


async def test_meter_reading_below_previous_is_refused(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await identify(pilot, app, IVANOVA)
        await tap(pilot, "#meters")
        await on_screen(pilot, app, "MetersScreen")
        await _press(pilot, "120")
        await tap(pilot, "#submit")
        await until(pilot, lambda: "меньше предыдущего" in text_of(app, "#result"))
    assert await _readings(app.settings.journal_path) == []


async def test_meter_reading_implausibly_large_is_refused(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await identify(pilot, app, IVANOVA)
        await tap(pilot, "#meters")
        await on_screen(pilot, app, "MetersScreen")
        await _press(pilot, "1234")  # a digit too many: 1110 m3 in a month
        await tap(pilot, "#submit")
        await until(pilot, lambda: "слишком велик" in text_of(app, "#result"))
    assert await _readings(app.settings.journal_path) == []


async def test_second_meter_and_previous_submission_is_the_new_baseline(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await identify(pilot, app, IVANOVA)
        await tap(pilot, "#meters")
        await on_screen(pilot, app, "MetersScreen")
        await tap(pilot, "#meter-1")  # electricity
        assert "18250,000 kWh" in text_of(app, "#previous")
        await _press(pilot, "18400")
        await tap(pilot, "#submit")
        await until(pilot, lambda: "принято" in text_of(app, "#result"))
        await _press(pilot, "18300")  # below the reading just submitted
        await tap(pilot, "#submit")
        await until(pilot, lambda: "меньше предыдущего" in text_of(app, "#result"))
        await tap(pilot, "#back")
        await on_screen(pilot, app, "ServicesScreen")


async def test_account_without_meters_hides_the_button(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await identify(pilot, app, PETROV)
        assert not app.screen.query_one("#meters").display


# --------------------------------------------------------------------------- statement


async def test_statement_lists_charges_and_kiosk_payments_and_prints(tmp_path: Path) -> None:
    app = make_app(tmp_path, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await identify(pilot, app, IVANOVA)
        await tap(pilot, "#statement")
        await on_screen(pilot, app, "StatementScreen")
        await until(pilot, lambda: app.screen.rows != ())
        whats = [r.what for r in app.screen.rows]
        assert "Содержание и ремонт жилья" in whats
        assert all(r.kind == "charge" for r in app.screen.rows)
        await tap(pilot, "#months-12")
        await until(pilot, lambda: app.screen.months == 12)
        await tap(pilot, "#print")
        await until(pilot, lambda: "напечатана" in text_of(app, "#status"))
        printer = app.services.printer_simulator
        assert printer is not None
        printed = [e.text for e in printer.printed if isinstance(e, TextLine)]
        assert any("Выписка по счёту 1000000008" in line for line in printed)
        assert "Содержание и ремонт жилья" in " ".join(printed)


async def test_statement_shows_a_payment_made_here(tmp_path: Path) -> None:
    app = make_app(tmp_path, frozen=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await identify(pilot, app, PETROV)
        from kiosk.messages import AmountsChosen, PayConfirmed, SurchargeDecided
        from kiosk.model import BasketItem

        app.screen.post_message(
            AmountsChosen((BasketItem(code="INTERCOM", amount_minor=7_500, selected=True),))
        )
        await on_screen(pilot, app, "SurchargeScreen")
        app.screen.post_message(SurchargeDecided(False))
        await on_screen(pilot, app, "ConfirmScreen")
        app.screen.post_message(PayConfirmed())
        await on_screen(pilot, app, "ReceiptScreen")
        await tap(pilot, "#finish")
        await on_screen(pilot, app, "WelcomeScreen")
        await identify(pilot, app, PETROV)
        await tap(pilot, "#view-paid")
        assert money(7_500, "ru") in text_of(app, "#notes")
        await tap(pilot, "#statement")
        await on_screen(pilot, app, "StatementScreen")
        await until(pilot, lambda: any(r.kind == "payment" for r in app.screen.rows))
        payment = next(r for r in app.screen.rows if r.kind == "payment")
        assert payment.amount_minor == -7_500


# --------------------------------------------------------------------------- service mode


async def _to_pin(pilot, app) -> None:  # type: ignore[no-untyped-def]
    await pilot.click("#staff")
    await on_screen(pilot, app, "PinScreen")


async def test_service_mode_with_pin_shows_devices_queue_and_catalog(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _to_pin(pilot, app)
        await _press(pilot, SERVICE_PIN)
        assert text_of(app, "#dots") == "●●●●"
        await tap(pilot, "#ok")
        await on_screen(pilot, app, "ServiceModeScreen")
        await until(pilot, lambda: app.screen.report is not None)
        report = text_of(app, "#report-text")
        assert "Терминал оплаты: готов" in report
        assert "Принтер чеков: готов" in report
        assert "Каталог: версия 1, счетов 64" in report
        assert "Не отправлено в центр: 0 записей" in report
        await tap(pilot, "#test_receipt")
        await until(pilot, lambda: "Выполнено: Тестовый чек" in text_of(app, "#action-result"))
        printer = app.services.printer_simulator
        assert printer is not None
        assert any(isinstance(e, TextLine) and "ТЕСТОВЫЙ ЧЕК" in e.text for e in printer.printed)
        await tap(pilot, "#end_of_day")
        await until(pilot, lambda: "Закрытие дня" in text_of(app, "#action-result"))
        await tap(pilot, "#exit")
        await on_screen(pilot, app, "WelcomeScreen")


async def test_wrong_pins_lock_pin_entry(tmp_path: Path) -> None:
    app = make_app(tmp_path, pin_attempts_max=2)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _to_pin(pilot, app)
        await _press(pilot, "0000")
        await tap(pilot, "#ok")
        await until(pilot, lambda: "Осталось попыток: 1" in text_of(app, "#result"))
        await _press(pilot, "1111")
        await tap(pilot, "#ok")
        await until(pilot, lambda: "заблокирован" in text_of(app, "#result"))
        await _press(pilot, SERVICE_PIN)  # right, but locked
        await tap(pilot, "#ok")
        await until(pilot, lambda: not app.screen.checking)
        assert app.screen.__class__.__name__ == "PinScreen"
        assert "заблокирован" in text_of(app, "#result")
        await tap(pilot, "#back")
        await on_screen(pilot, app, "WelcomeScreen")


async def test_service_mode_disabled_without_pin_hash(tmp_path: Path) -> None:
    app = make_app(tmp_path, service_pin_hash="")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _to_pin(pilot, app)
        await _press(pilot, "1234")
        await tap(pilot, "#ok")
        await until(pilot, lambda: "не настроен" in text_of(app, "#result"))
