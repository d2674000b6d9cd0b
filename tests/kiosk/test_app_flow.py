"""Pilot tests of the resident's flow: every screen and branch, against the device simulators."""

from __future__ import annotations

from pathlib import Path

import pytest

from central_sync.journal import Journal
from drivers.escpos.document import QrCode, TextLine
from drivers.scanner.gost_qr import encode_payment_qr
from drivers.scanner.samples import sample_bill
from drivers.zvt.simulator import Outcome
from kiosk.i18n import money
from kiosk.payment import PaymentPhase
from tests.kiosk.pilot import (
    SIZE,
    click_number,
    identify,
    make_app,
    on_screen,
    screen_name,
    started,
    tap,
    text_of,
    type_number,
    until,
)
from tests.kiosk.support import IVANOVA, IVANOVA_CARD, KUZNETSOVA, PETROV


async def _journal_entries(path: Path) -> list[tuple[str, dict[str, object]]]:
    journal = await Journal.open(path)
    try:
        return [(e.kind, dict(e.body)) for e in await journal.read(1, 1000)]
    finally:
        await journal.close()


async def _to_amounts(pilot, app, number: str = IVANOVA) -> None:  # type: ignore[no-untyped-def]
    await identify(pilot, app, number)
    await tap(pilot, "#pay")
    await on_screen(pilot, app, "AmountsScreen")


def _only(app, *codes: str):  # type: ignore[no-untyped-def]
    """Untick every service but ``codes`` on the amount screen (by pressing the tick boxes)."""
    screen = app.screen
    return [code for code, item in screen.items.items() if item.selected and code not in codes]


async def _select_only(pilot, app, *codes: str) -> None:  # type: ignore[no-untyped-def]
    for code in _only(app, *codes):
        await tap(pilot, f"#sel-{code}")
    for code in codes:
        if not app.screen.items[code].selected:
            await tap(pilot, f"#sel-{code}")


# --------------------------------------------------------------------------- welcome


async def test_welcome_unknown_number_shows_message_and_clears(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await type_number(pilot, "1000000990")  # Luhn-valid, not in the catalog
        await tap(pilot, "#find")
        await until(pilot, lambda: "не найден" in text_of(app, "#message"))
        assert screen_name(app) == "WelcomeScreen"
        assert text_of(app, "#number") == "—"


async def test_welcome_typo_in_number_is_refused_before_lookup(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        # Real mouse clicks, quick repeats included: "00" must give two zeros.
        await click_number(pilot, "1000000009")  # check digit wrong
        assert app.screen.number == "1000000009"
        await pilot.click("#find")
        await until(pilot, lambda: text_of(app, "#message") != "")
        assert screen_name(app) == "WelcomeScreen"


async def test_welcome_language_switch_changes_every_text(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert text_of(app, "#subtitle") == "Добро пожаловать!"
        await tap(pilot, "#lang")
        await until(pilot, lambda: text_of(app, "#subtitle") == "Welcome!")
        assert text_of(app, "#find") == "Find"
        assert text_of(app, "#lang") == "Русский"
        await identify(pilot, app, IVANOVA)
        assert "Services of account" in text_of(app, "#title")
        assert text_of(app, "#pay") == "Pay"


async def test_card_tap_opens_the_cards_account(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.services.simulate_card(IVANOVA_CARD)
        await on_screen(pilot, app, "ServicesScreen")
        assert app.session is not None
        assert app.session.virtual_number == IVANOVA
        assert app.session.source == "card"


async def test_demo_key_taps_a_demo_card(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await pilot.press("f6")
        await on_screen(pilot, app, "ServicesScreen")
        assert app.session is not None
        assert app.session.virtual_number == PETROV


async def test_unknown_card_shows_message(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        app.services.simulate_card("0411223344556677")
        await until(pilot, lambda: "не найден" in text_of(app, "#message"))
        assert screen_name(app) == "WelcomeScreen"


async def test_scanned_bill_prefills_its_sum(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        bill = sample_bill(persAcc=IVANOVA, Sum=400_000)
        assert await app.services.simulate_scan(encode_payment_qr(bill))
        await on_screen(pilot, app, "ServicesScreen")
        assert app.session is not None
        assert app.session.source == "qr"
        assert app.session.bill_sum_minor == 400_000
        await tap(pilot, "#pay")
        await on_screen(pilot, app, "AmountsScreen")
        # 4000.00 covers management (3124.50) and then 875.50 of cold water (487.30)
        # and hot water in order.
        assert app.screen.total_minor == 400_000
        assert money(400_000, "ru") in text_of(app, "#bill")
        items = app.screen.items
        assert items["MGMT"].amount_minor == 312_450
        assert items["CW"].amount_minor == 48_730
        assert items["HW"].amount_minor == 400_000 - 312_450 - 48_730
        assert not items["EL"].selected


# --------------------------------------------------------------------------- services


async def test_services_open_and_paid_views(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await identify(pilot, app, PETROV)
        table = app.screen.query_one("#table")
        assert [str(k.value) for k in table.rows] == ["MGMT", "INTERCOM"]
        await tap(pilot, "#view-paid")
        await pilot.pause()
        assert [str(k.value) for k in table.rows] == ["HEAT", "CW"]
        cell = table.get_cell("HEAT", "due")
        assert "переплата " + money(152_300, "ru") in cell.plain


async def test_services_show_instalments_with_due_dates(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await identify(pilot, app, IVANOVA)
        notes = text_of(app, "#notes")
        assert "Рассрочка: Горячее водоснабжение" in notes
        assert "до 2025-06-10 — " + money(381_867, "ru") in notes


async def test_services_nothing_owed_disables_pay_and_back_clears_session(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await identify(pilot, app, KUZNETSOVA)
        assert app.screen.query_one("#pay").disabled
        assert "Задолженности нет" in text_of(app, "#notes")
        await tap(pilot, "#back")
        await on_screen(pilot, app, "WelcomeScreen")
        assert app.session is None


# --------------------------------------------------------------------------- amounts


async def test_amounts_defaults_to_next_instalment_and_totals(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _to_amounts(pilot, app)
        items = app.screen.items
        assert items["HW"].amount_minor == 381_867  # the instalment due 2025-06-10
        assert app.screen.total_minor == 312_450 + 48_730 + 381_867 + 96_412 + 84_660
        assert "Итого: " + money(924_119, "ru") in text_of(app, "#total")


async def test_amounts_keypad_partial_payment(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _to_amounts(pilot, app)
        await _select_only(pilot, app, "MGMT")
        await tap(pilot, "#amt-MGMT")
        for key in ("1", "5", "0", "0", "point", "5"):
            await tap(pilot, f"#key-{key}")
        assert app.screen.items["MGMT"].amount_minor == 150_050
        assert text_of(app, "#entry") == "1500,5"
        await tap(pilot, "#key-back")
        await tap(pilot, "#key-back")
        assert app.screen.items["MGMT"].amount_minor == 150_000
        assert app.screen.total_minor == 150_000
        assert not app.screen.query_one("#next").disabled


async def test_amounts_overpayment_beyond_limit_blocks_next(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _to_amounts(pilot, app)
        await _select_only(pilot, app, "CW")
        await tap(pilot, "#amt-CW")
        # 20 000 RUB against a 487.30 debt: more than 10 000 RUB of overpayment.
        for key in "20000":
            await tap(pilot, f"#key-{key}")
        row = app.screen.query_one("#row-CW")
        assert "Переплата больше допустимой" in str(row.query_one(".problem").render())
        assert app.screen.query_one("#next").disabled
        await tap(pilot, "#key-back")  # 2000 RUB: an advance within the limit
        assert app.screen.problem("CW") is None
        assert not app.screen.query_one("#next").disabled


async def test_amounts_nothing_selected_blocks_next_and_back_returns(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _to_amounts(pilot, app)
        await _select_only(pilot, app)
        assert app.screen.query_one("#next").disabled
        assert "Выберите хотя бы одну услугу" in text_of(app, "#total")
        await tap(pilot, "#back")
        await on_screen(pilot, app, "ServicesScreen")


# --------------------------------------------------------------------------- surcharge


async def test_surcharge_accept_adds_fee_to_the_order(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _to_amounts(pilot, app)
        await _select_only(pilot, app, "CW")
        await tap(pilot, "#next")
        await on_screen(pilot, app, "SurchargeScreen")
        assert "Холодное водоснабжение: 4,87 ₽" in text_of(app, "#fees")
        await tap(pilot, "#accept")
        await on_screen(pilot, app, "ConfirmScreen")
        assert app.order is not None
        assert app.order.surcharge_minor == 487
        assert app.order.total_minor == 48_730 + 487
        assert "К оплате картой: 492,17 ₽" in text_of(app, "#total")


async def test_surcharge_decline_non_declinable_cancels(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _to_amounts(pilot, app)
        await _select_only(pilot, app, "CW")
        await tap(pilot, "#next")
        await on_screen(pilot, app, "SurchargeScreen")
        await tap(pilot, "#decline")
        await on_screen(pilot, app, "ServicesScreen")
        await until(pilot, lambda: "платёж отменён" in text_of(app, "#notice"))
        assert app.order is None


async def test_surcharge_decline_declinable_pays_without_it(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _to_amounts(pilot, app, PETROV)
        await _select_only(pilot, app, "INTERCOM")
        await tap(pilot, "#next")
        await on_screen(pilot, app, "SurchargeScreen")
        assert "можно отказаться" in text_of(app, "#fees")
        await tap(pilot, "#decline")
        await on_screen(pilot, app, "ConfirmScreen")
        assert app.order is not None
        assert app.order.surcharge_minor == 0
        assert app.order.total_minor == 7_500


async def test_provider_paid_fee_is_information_only(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _to_amounts(pilot, app)
        await _select_only(pilot, app, "CAPR")
        await tap(pilot, "#next")
        await on_screen(pilot, app, "SurchargeScreen")
        assert "оплачивает поставщик" in text_of(app, "#fees")
        assert not app.screen.query_one("#decline").display
        await tap(pilot, "#accept")
        await on_screen(pilot, app, "ConfirmScreen")
        assert app.order is not None
        assert app.order.surcharge_minor == 0


# --------------------------------------------------------------------------- payment


async def _pay_cw(pilot, app) -> None:  # type: ignore[no-untyped-def]
    await _to_amounts(pilot, app)
    await _select_only(pilot, app, "CW")
    await tap(pilot, "#next")
    await on_screen(pilot, app, "SurchargeScreen")
    await tap(pilot, "#accept")
    await on_screen(pilot, app, "ConfirmScreen")
    await tap(pilot, "#pay")


async def test_payment_approved_prints_receipt_and_journals(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _pay_cw(pilot, app)
        await on_screen(pilot, app, "ReceiptScreen")
        await until(pilot, lambda: "Спасибо" in text_of(app, "#print-status"))
        receipt = text_of(app, "#receipt")
        assert "Холодное водоснабжение" in receipt
        assert "492,17 ₽" in receipt
        assert "220220******0014" in receipt
        assert "█" in text_of(app, "#qr")
        printer = app.services.printer_simulator
        assert printer is not None
        printed = "\n".join(e.text for e in printer.printed if isinstance(e, TextLine))
        assert "492,17" in printed
        qrs = [e for e in printer.printed if isinstance(e, QrCode)]
        assert len(qrs) == 1
        assert qrs[0].data.startswith(b"LP1|kp-")
        await tap(pilot, "#finish")
        await on_screen(pilot, app, "WelcomeScreen")
        assert app.session is None
    entries = await _journal_entries(app.settings.journal_path)
    kinds = [k for k, _ in entries]
    assert kinds[:2] == ["payment-intent", "payment-result"]
    intent, result = entries[0][1], entries[1][1]
    assert intent["amount_minor"] == 49_217
    assert intent["surcharge_minor"] == 487
    assert intent["account"] == IVANOVA
    assert result["outcome"] == "approved"
    assert result["payment_id"] == intent["payment_id"]
    assert (
        "device-event",
        {"event": "receipt-printed", "payment_id": intent["payment_id"]},
    ) in entries


async def test_paid_service_shows_paid_here_next_time(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _pay_cw(pilot, app)
        await on_screen(pilot, app, "ReceiptScreen")
        await tap(pilot, "#finish")
        await on_screen(pilot, app, "WelcomeScreen")
        await identify(pilot, app, IVANOVA)
        assert app.session is not None
        assert app.session.line("CW").outstanding_minor == 0
        table = app.screen.query_one("#table")
        assert "CW" not in [str(k.value) for k in table.rows]
        assert app.services.staff_status().stored_payments == 1


async def test_payment_declined_shows_reason_and_retry_succeeds(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        sim = app.services.terminal_simulator
        assert sim is not None
        sim.script(Outcome.DECLINED)
        await _pay_cw(pilot, app)
        await on_screen(pilot, app, "PaymentScreen")
        await until(pilot, lambda: app.screen.report is not None)
        assert app.screen.report.phase is PaymentPhase.DECLINED
        assert "Платёж отклонён" in text_of(app, "#outcome")
        assert app.screen.query_one("#retry").display
        await tap(pilot, "#retry")
        await on_screen(pilot, app, "ReceiptScreen")
    entries = await _journal_entries(app.settings.journal_path)
    outcomes = [b["outcome"] for k, b in entries if k == "payment-result"]
    assert outcomes == ["declined", "approved"]
    intents = [b["payment_id"] for k, b in entries if k == "payment-intent"]
    assert len(set(intents)) == 2  # a retry after a final decline is a new payment


async def test_payment_cancel_while_waiting_for_card(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        sim = app.services.terminal_simulator
        assert sim is not None
        sim.config.card_wait_s = 5.0
        await _pay_cw(pilot, app)
        await on_screen(pilot, app, "PaymentScreen")
        await until(pilot, lambda: not app.screen.query_one("#cancel").disabled)
        await tap(pilot, "#cancel")
        await until(pilot, lambda: app.screen.report is not None)
        assert app.screen.report.phase is PaymentPhase.CANCELLED
        assert "Деньги не списаны" in text_of(app, "#outcome")
        await tap(pilot, "#back")
        await on_screen(pilot, app, "ConfirmScreen")
    entries = await _journal_entries(app.settings.journal_path)
    assert [b.get("event") for k, b in entries if k == "device-event"] == [
        "payment-cancel-requested"
    ]
    assert [b["outcome"] for k, b in entries if k == "payment-result"] == ["cancelled"]


async def test_payment_terminal_busy_takes_no_money(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        sim = app.services.terminal_simulator
        assert sim is not None
        sim.script(Outcome.BUSY)
        await _pay_cw(pilot, app)
        await on_screen(pilot, app, "PaymentScreen")
        await until(pilot, lambda: app.screen.report is not None)
        assert app.screen.report.phase is PaymentPhase.FAILED
        assert "Терминал занят" in text_of(app, "#outcome")


async def test_payment_offline_limit_refused_clearly(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _to_amounts(pilot, app)
        await tap(pilot, "#next")  # everything: 9 241.19 RUB + fee
        await on_screen(pilot, app, "SurchargeScreen")
        await tap(pilot, "#accept")
        await on_screen(pilot, app, "ConfirmScreen")
        app.services.journal.limits = type(app.services.journal.limits)(  # type: ignore[union-attr, misc]
            payment_amount_max_minor=500_000
        )
        await tap(pilot, "#pay")
        await on_screen(pilot, app, "PaymentScreen")
        await until(pilot, lambda: app.screen.report is not None)
        assert app.screen.report.phase is PaymentPhase.REFUSED
        assert "сумма больше допустимой без связи" in text_of(app, "#outcome")
        assert app.services.terminal_simulator.commands_seen.count("Authorization") == 0  # type: ignore[union-attr]
    assert await _journal_entries(app.settings.journal_path) == []


async def test_payment_lost_answer_is_recovered_as_approved(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        sim = app.services.terminal_simulator
        assert sim is not None
        sim.config.silence_s = 0.5
        sim.script(Outcome.TIMEOUT)  # books, then stops answering
        await _pay_cw(pilot, app)
        await on_screen(pilot, app, "ReceiptScreen", timeout_s=40)
    entries = await _journal_entries(app.settings.journal_path)
    results = [b for k, b in entries if k == "payment-result"]
    assert len(results) == 1
    assert results[0]["outcome"] == "approved"
    assert results[0]["resolved_by"] == "recovery"
    assert sum(1 for r in sim.log if r.kind == "payment") == 1


async def test_printer_out_of_paper_shows_receipt_and_alarms(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        printer = app.services.printer_simulator
        assert printer is not None
        printer.load_paper(5)
        await _pay_cw(pilot, app)
        await on_screen(pilot, app, "ReceiptScreen")
        await until(pilot, lambda: "закончилась бумага" in text_of(app, "#print-status"))
        assert "492,17 ₽" in text_of(app, "#receipt")
        assert "paper_out" in app.services.alarms
        await until(pilot, lambda: "нужен администратор" in text_of(app, "#staff"))
    entries = await _journal_entries(app.settings.journal_path)
    assert [b["outcome"] for k, b in entries if k == "payment-result"] == ["approved"]
    assert {"event": "printer-paper-out"} in [b for k, b in entries if k == "device-event"]


async def test_back_from_confirm_and_surcharge(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await _to_amounts(pilot, app)
        await _select_only(pilot, app, "CW")
        await tap(pilot, "#next")
        await on_screen(pilot, app, "SurchargeScreen")
        await tap(pilot, "#accept")
        await on_screen(pilot, app, "ConfirmScreen")
        await tap(pilot, "#back")
        await on_screen(pilot, app, "SurchargeScreen")
        await tap(pilot, "#back")
        await on_screen(pilot, app, "AmountsScreen")


# --------------------------------------------------------------------------- idle


@pytest.mark.parametrize("where", ["services", "amounts", "receipt"])
async def test_idle_timeout_returns_to_welcome_and_forgets(tmp_path: Path, where: str) -> None:
    now = [1000.0]
    app = make_app(tmp_path, idle_timeout_s=30)
    app.monotonic = lambda: now[0]
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        if where == "receipt":
            await _pay_cw(pilot, app)
            await on_screen(pilot, app, "ReceiptScreen")
        else:
            await identify(pilot, app, IVANOVA)
            if where == "amounts":
                await tap(pilot, "#pay")
                await on_screen(pilot, app, "AmountsScreen")
        app.touch()
        now[0] += 20
        app.idle_tick()
        await pilot.pause()
        assert "10 с" in text_of(app, "#idle")
        now[0] += 11
        app.idle_tick()
        await on_screen(pilot, app, "WelcomeScreen")
        assert app.session is None
        assert app.order is None


async def test_idle_does_not_interrupt_a_running_payment(tmp_path: Path) -> None:
    now = [1000.0]
    app = make_app(tmp_path, idle_timeout_s=30)
    app.monotonic = lambda: now[0]
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        sim = app.services.terminal_simulator
        assert sim is not None
        sim.config.card_wait_s = 1.0
        await _pay_cw(pilot, app)
        await on_screen(pilot, app, "PaymentScreen")
        now[0] += 100
        app.idle_tick()
        await pilot.pause()
        assert screen_name(app) == "PaymentScreen"
        await on_screen(pilot, app, "ReceiptScreen")


async def test_idle_clears_a_number_typed_on_welcome(tmp_path: Path) -> None:
    now = [1000.0]
    app = make_app(tmp_path, idle_timeout_s=30)
    app.monotonic = lambda: now[0]
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        app.touch()
        await type_number(pilot, "1234")
        now[0] += 31
        app.idle_tick()
        await pilot.pause()
        assert text_of(app, "#number") == "—"
