"""SVG snapshots of every screen in Russian and English, compared with the committed files.

Each screen is shown by the real app with fixed data (the demo catalog's
account, a fixed receipt, fixed device figures) and exported with
``App.export_screenshot()``. A difference fails the test and writes the new
SVG beside the old one (``*.new.svg``) to look at. After an intended change of
the UI, refresh the files with::

    KIOSK_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/kiosk/test_snapshots.py
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.screen import Screen

from drivers.escpos.document import Document, QrCode
from drivers.escpos.render import render_receipt_text, render_text
from kiosk.app import KioskApp
from kiosk.documents import build_receipt
from kiosk.messages import (
    PaymentFinished,
    PaymentProgress,
    PrintFinished,
    ServiceReportReady,
)
from kiosk.model import BasketItem, Order, OrderItem, ReadingPoint, SurchargeLine, SurchargeQuote
from kiosk.payment import PaymentPhase
from kiosk.screens.amounts import AmountsScreen
from kiosk.screens.confirm import ConfirmScreen
from kiosk.screens.meters import MetersScreen
from kiosk.screens.payment import PaymentScreen
from kiosk.screens.pin import PinScreen
from kiosk.screens.receipt import ReceiptScreen
from kiosk.screens.service_mode import ServiceModeScreen
from kiosk.screens.services import ServicesScreen
from kiosk.screens.statement import StatementScreen
from kiosk.screens.surcharge import SurchargeScreen
from kiosk.screens.welcome import WelcomeScreen
from kiosk.services import PaymentReport, PaymentUpdate, PrintOutcome, ServiceReport, StaffStatus
from tests.kiosk.pilot import SIZE, make_app, started
from tests.kiosk.support import FROZEN_NOW, IVANOVA

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("KIOSK_UPDATE_SNAPSHOTS") == "1"
STAFF = StaffStatus(ready=True, online=True, stored_payments=2, alarms=(), payments_paused=False)
PAYMENT_ID = "kp-5a1e0c7d9b2f4e6a8c0d1e2f"

Factory = Callable[[KioskApp, str], tuple[Screen[Any], list[Any]]]


def _session(app: KioskApp) -> Any:
    assert app.session is not None
    return app.session


def _order() -> Order:
    return Order(
        account=IVANOVA,
        items=(
            OrderItem(code="CW", name_ru="Холодное водоснабжение", name_en="Cold water",
                      provider_id="brn-water", period="2025-05", amount_minor=48_730,
                      debt_minor=48_730),
            OrderItem(code="EL", name_ru="Электроснабжение", name_en="Electricity",
                      provider_id="brn-power", period="2025-05", amount_minor=96_412,
                      debt_minor=96_412),
        ),
        surcharge_minor=1_451,
    )  # fmt: skip


def _receipt_texts(lang: str) -> tuple[str, str]:
    order = _order()
    intent = {
        "payment_id": PAYMENT_ID,
        "account": IVANOVA,
        "amount_minor": order.total_minor,
        "currency": "RUB",
        "surcharge_minor": order.surcharge_minor,
        "items": [
            {"service": i.code, "name_ru": i.name_ru, "name_en": i.name_en,
             "period": i.period, "amount_minor": i.amount_minor}
            for i in order.items
        ],
    }  # fmt: skip
    result = {
        "masked_pan": "220220******0014",
        "auth_code": "007920",
        "rrn": "000001",
        "card_brand": "MIR",
        "terminal_id": "52523535",
    }
    receipt = build_receipt(
        intent,
        result,
        paid_at=dt.datetime(2025, 6, 2, 10, 31, 5),
        header=("ООО «Расчётный центр»", "Барнаул"),
        terminal_label="Lobby 1",
        lang=lang,
    )
    text = render_receipt_text(
        receipt, lang=lang, currency_label="₽" if lang == "ru" else "RUB", qr="label"
    )
    assert receipt.qr_payload is not None
    qr = render_text(Document(elements=(QrCode(data=receipt.qr_payload.encode()),)), qr="blocks")
    return text.replace("[QR]", "").rstrip() + "\n", qr.rstrip("\n")


def _service_report() -> ServiceReport:
    return ServiceReport(
        terminal=("ok", {}),
        printer=("paper_low", {}),
        card_reader=("ok", {"ru": "Simulated PCD", "en": "Simulated PCD"}),
        scanner=("absent", {}),
        unsent_entries=4,
        oldest_pending_age_s=754.0,
        stored_payments=2,
        stored_amount_minor=147_593,
        outcome_unknown=0,
        catalog_version=1,
        catalog_accounts=64,
        catalog_age_s=3_600.0,
        catalog_stale=False,
        catalog_applied_at_ms=int(FROZEN_NOW * 1000) - 1_800_000,
        acknowledged_through=12,
        last_ack_ms=int(FROZEN_NOW * 1000) - 95_000,
        online=True,
        alarms=("paper_out",),
    )


def _p(date: str, value: int, used: int | None) -> ReadingPoint:
    return ReadingPoint(
        date=date,
        value_milli=value,
        consumption_milli=used,
        source="catalog" if used is None else "kiosk",
    )


def _points() -> dict[tuple[str, str], tuple[ReadingPoint, ...]]:
    return {
        ("CW", "10457736"): (
            _p("2025-03-22", 110_000, None),
            _p("2025-04-21", 116_900, 6_900),
            _p("2025-05-23", 123_456, 6_556),
        ),
        ("EL", "31112094"): (
            _p("2025-05-25", 18_250_000, None),
        ),
    }  # fmt: skip


SCREENS: dict[str, Factory] = {
    "welcome": lambda app, lang: (WelcomeScreen(lang, STAFF, demo=True), []),
    "services": lambda app, lang: (ServicesScreen(lang, _session(app), staff=STAFF), []),
    "amounts": lambda app, lang: (
        AmountsScreen(
            lang,
            _session(app),
            tuple(
                BasketItem(
                    code=line.code, amount_minor=line.outstanding_minor, selected=line.code != "HW"
                )
                for line in _session(app).lines
            ),
            staff=STAFF,
        ),
        [],
    ),
    "surcharge": lambda app, lang: (
        SurchargeScreen(
            lang,
            SurchargeQuote(
                lines=(
                    SurchargeLine(
                        code="CW",
                        name_ru="Холодное водоснабжение",
                        name_en="Cold water",
                        amount_minor=487,
                        payer="resident",
                        declinable=False,
                    ),
                    SurchargeLine(
                        code="EL",
                        name_ru="Электроснабжение",
                        name_en="Electricity",
                        amount_minor=964,
                        payer="resident",
                        declinable=True,
                    ),
                    SurchargeLine(
                        code="CAPR",
                        name_ru="Взнос на капитальный ремонт",
                        name_en="Capital repairs contribution",
                        amount_minor=677,
                        payer="provider",
                        declinable=False,
                    ),
                )
            ),
            staff=STAFF,
        ),
        [],
    ),
    "confirm": lambda app, lang: (ConfirmScreen(lang, _session(app), _order(), staff=STAFF), []),
    "payment": lambda app, lang: (
        PaymentScreen(lang, _order().total_minor, staff=STAFF),
        [
            PaymentProgress(
                PaymentUpdate(
                    phase=PaymentPhase.AT_TERMINAL,
                    status_key="payment.insert_card",
                    cancellable=True,
                )
            )
        ],
    ),
    "declined": lambda app, lang: (
        PaymentScreen(lang, _order().total_minor, staff=STAFF),
        [
            PaymentFinished(
                PaymentReport(
                    payment_id=PAYMENT_ID,
                    phase=PaymentPhase.DECLINED,
                    message_key="payment.declined",
                    reason={"ru": "недостаточно средств", "en": "insufficient funds"},
                )
            )
        ],
    ),
    "receipt": lambda app, lang: (
        ReceiptScreen(lang, *_receipt_texts(lang), staff=STAFF),
        [PrintFinished(PrintOutcome(ok=False, fault="paper_out"))],
    ),
    "meters": lambda app, lang: (MetersScreen(lang, _session(app), _points(), staff=STAFF), []),
    "statement": lambda app, lang: (StatementScreen(lang, _session(app), staff=STAFF), []),
    "pin": lambda app, lang: (PinScreen(lang, staff=STAFF), []),
    "service_mode": lambda app, lang: (
        ServiceModeScreen(lang, staff=STAFF, now_ms=int(FROZEN_NOW * 1000)),
        [ServiceReportReady(_service_report())],
    ),
}

# The terminal title and a few ids Textual derives from object identities.
_VOLATILE = re.compile(r"terminal-\d+")


def _normalise(svg: str) -> str:
    return _VOLATILE.sub("terminal", svg)


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_every_screen_matches_its_snapshot(tmp_path: Path, lang: str) -> None:
    app = make_app(tmp_path)
    app.monotonic = lambda: 0.0  # the idle countdown shows the full timeout, always
    app.touch()
    app.lang = lang
    mismatches: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        result = await app.services.lookup(_ivanova())
        app.session = result.session
        for name, factory in SCREENS.items():
            screen, messages = factory(app, lang)
            await app.push_screen(screen)
            await pilot.pause()
            for message in messages:
                screen.post_message(message)
            await pilot.pause()
            # The tick the app's own once-a-second timer would send now, so the
            # timer firing during the capture cannot change what is shown
            # (a running card payment shows no countdown, for example).
            app.idle_tick()
            await pilot.pause()
            await pilot.pause()
            svg = _normalise(app.export_screenshot(title=f"{name} ({lang})", simplify=True))
            path = SNAPSHOTS / f"{name}-{lang}.svg"
            if UPDATE or not path.exists():
                SNAPSHOTS.mkdir(exist_ok=True)
                path.write_text(svg, encoding="utf-8")
            elif path.read_text(encoding="utf-8") != svg:
                path.with_suffix(".new.svg").write_text(svg, encoding="utf-8")
                mismatches.append(path.name)
            await app.pop_screen()
    assert not mismatches, f"screens differ from their snapshots: {mismatches}"


def _ivanova() -> Any:
    from drivers.identification import AccountIdentified, VirtualNumberRef

    return AccountIdentified(source="keypad", reference=VirtualNumberRef(number=IVANOVA))
