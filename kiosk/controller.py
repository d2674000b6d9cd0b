"""The controller: the resident's flow from screen to screen, and the workers that do the I/O.

Theory of operation
-------------------
Screens post requests (:mod:`kiosk.messages`); they bubble to the app, where
the handlers below decide the next screen and, when something must be read,
written, printed or paid, run a :class:`~kiosk.services.KioskServices`
coroutine in a Textual worker. The worker posts the answer to the screen that
asked. The flow, as a table of "request on screen -> what happens"::

    Welcome   identification        -> lookup -> Services | message on Welcome
    Services  Navigate(amounts)     -> Amounts (defaults or the bill's sum)
              Navigate(meters)      -> Meters;  Navigate(statement) -> Statement
    Amounts   AmountsChosen         -> Surcharge (a fee applies) | Confirm
    Surcharge SurchargeDecided      -> Confirm | back to Services (payment cancelled)
    Confirm   PayConfirmed          -> Payment + pay worker
    Payment   approved              -> Receipt + print worker
              other outcome         -> stays, shows it (Retry / Back / Done)
    any       GoBack                -> previous screen (Services -> Welcome)
    any       GoHome / idle timeout -> Welcome, session cleared
    staff line tap                  -> PIN -> Service mode

The idle timer runs once a second; it never fires while the terminal is
working on a payment, and every touch or key restarts it. Going home drops
the account, the basket and the order: nothing a resident entered stays in
memory or on screen for the next person.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.events import Event, InputEvent, Key, MouseDown
from textual.message import Message
from textual.screen import Screen

from drivers.identification import AccountIdentified, IdentificationEvent, IdentificationFailed
from firmware_config.settings import Settings
from kiosk.devices import DeviceChoice
from kiosk.i18n import Lang, t
from kiosk.messages import (
    ActionText,
    AmountsChosen,
    CancelPaymentRequested,
    DemoBillScanned,
    DemoCardTapped,
    GoBack,
    GoHome,
    IdentifyResult,
    IdleTick,
    LanguageChanged,
    LanguageToggled,
    Navigate,
    NumberSubmitted,
    PayConfirmed,
    PaymentFinished,
    PaymentProgress,
    PinEntered,
    PinResult,
    PrintFinished,
    ReadingResult,
    ReadingSubmitted,
    RetryPayment,
    ServiceAction,
    ServiceActionDone,
    ServiceModeRequested,
    ServiceReportReady,
    StaffStatusChanged,
    StatementReady,
    StatementRequested,
    SurchargeDecided,
)
from kiosk.model import (
    AccountSession,
    BasketItem,
    Order,
    SurchargeQuote,
    allocate_sum,
    build_order,
    decide_surcharge,
    default_amount,
    quote_surcharges,
)
from kiosk.payment import PaymentPhase
from kiosk.services import KioskServices, PaymentReport, PaymentUpdate, Probe, StaffStatus

if TYPE_CHECKING:
    from drivers.zvt.session import ZvtTimeouts

logger = logging.getLogger(__name__)

IDLE_TICK_S = 1.0


class _Identified(Message):
    """Internal: an identification event from the services, onto the app's queue."""

    def __init__(self, event: IdentificationEvent) -> None:
        super().__init__()
        self.event = event


class _Staff(Message):
    """Internal: new staff status from the services."""

    def __init__(self, status: StaffStatus) -> None:
        super().__init__()
        self.status = status


class KioskController(App[None]):
    """The flow (see the module docstring); :class:`kiosk.app.KioskApp` adds the frame."""

    def __init__(
        self,
        settings: Settings,
        *,
        devices: DeviceChoice | None = None,
        probe: Probe | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        terminal_timeouts: ZvtTimeouts | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.services = KioskServices(
            settings,
            devices=devices,
            listener=self,
            probe=probe,
            clock=clock,
            terminal_timeouts=terminal_timeouts,
        )
        self.monotonic = monotonic
        self.lang: str = settings.kiosk.languages[0]
        self.staff: StaffStatus | None = None
        self.session: AccountSession | None = None
        self.quote: SurchargeQuote | None = None
        self.order: Order | None = None
        self.last_activity = monotonic()
        self.services_started = False
        self.interactive = False

    @property
    def demo(self) -> bool:
        d = self.services.devices
        return d.card_reader == "simulator" or d.scanner == "simulator"

    # ------------------------------------------------------------------ services listener

    def identification(self, event: IdentificationEvent) -> None:
        self.post_message(_Identified(event))

    def staff_status(self, status: StaffStatus) -> None:
        self.post_message(_Staff(status))

    # ------------------------------------------------------------------ helpers

    def to_screen(self, message: Message, screen: Screen[Any] | None = None) -> None:
        """Post an answer to ``screen`` (default: the one on top)."""
        (screen or self.screen).post_message(message)

    def touch(self) -> None:
        """A resident or technician did something: restart the idle countdown."""
        self.last_activity = self.monotonic()

    async def on_event(self, event: Event) -> None:
        if isinstance(event, InputEvent) and isinstance(event, Key | MouseDown):
            self.touch()
        await super().on_event(event)

    def _screens(self) -> list[Screen[Any]]:
        return list(self.screen_stack)

    def _top(self, kind: type[Screen[Any]]) -> Screen[Any] | None:
        screen = self.screen
        return screen if isinstance(screen, kind) else None

    # ------------------------------------------------------------------ start-up

    async def start_services(self) -> None:
        # Residents can be identified first; card payments follow once the
        # terminal is registered and start-up recovery is done.
        await self.services.start_identification()
        self.interactive = True
        logger.info("kiosk_interactive")
        await self.services.start_payments()
        self.services_started = True
        logger.info("kiosk_ready")

    def on__staff(self, message: _Staff) -> None:
        self.staff = message.status
        for screen in self._screens():
            screen.post_message(StaffStatusChanged(message.status))

    # ------------------------------------------------------------------ language, idle

    def on_language_toggled(self, message: LanguageToggled) -> None:
        languages = self.settings.kiosk.languages
        self.lang = languages[(languages.index(self.lang) + 1) % len(languages)]
        for screen in self._screens():
            screen.post_message(LanguageChanged(self.lang))

    def idle_tick(self) -> None:
        """Once a second: show the countdown and go home when it runs out."""
        from kiosk.screens.payment import PaymentScreen
        from kiosk.screens.welcome import WelcomeScreen

        screen = self.screen
        if isinstance(screen, PaymentScreen) and screen.running:
            self.touch()
            self.to_screen(IdleTick(None))
            return
        left = self.settings.kiosk.idle_timeout_s - (self.monotonic() - self.last_activity)
        if isinstance(screen, WelcomeScreen):
            # No countdown here, but a number left half-typed is cleared (IdleTick(0)).
            self.to_screen(IdleTick(0 if left <= 0 else None))
            return
        if left <= 0:
            logger.info("kiosk_idle_timeout")
            self.go_home()
            return
        self.to_screen(IdleTick(math.ceil(left)))

    # ------------------------------------------------------------------ navigation

    def go_home(self) -> None:
        """Clear the session and show the welcome screen."""
        from kiosk.screens.welcome import WelcomeScreen

        self.session = self.quote = self.order = None
        while len(self.screen_stack) > 2:
            self.pop_screen()
        welcome = self.screen_stack[-1] if len(self.screen_stack) == 2 else None
        if isinstance(welcome, WelcomeScreen):
            welcome.number = ""
            welcome.message = None
        self.touch()

    def on_go_home(self, message: GoHome) -> None:
        self.go_home()

    def on_go_back(self, message: GoBack) -> None:
        from kiosk.screens.services import ServicesScreen

        if isinstance(self.screen, ServicesScreen) or len(self.screen_stack) <= 3:
            self.go_home()
        else:
            self.pop_screen()

    # ------------------------------------------------------------------ identification

    def on_number_submitted(self, message: NumberSubmitted) -> None:
        self.services.submit_virtual_number(message.text)

    def on__identified(self, message: _Identified) -> None:
        from kiosk.screens.welcome import WelcomeScreen

        welcome = self._top(WelcomeScreen)
        if welcome is None:
            return  # someone is already being served; a stray tap is ignored
        event = message.event
        if isinstance(event, IdentificationFailed):
            self.to_screen(IdentifyResult(busy=False, message=KioskServices.failure_text(event)))
            return
        self.touch()
        self.to_screen(IdentifyResult(busy=True))
        self.run_worker(self._lookup(event, welcome), group="lookup", exclusive=True)

    async def _lookup(self, event: AccountIdentified, welcome: Screen[Any]) -> None:
        from kiosk.screens.services import ServicesScreen

        result = await self.services.lookup(event)
        if result.session is None:
            key = "welcome.unknown" if result.failure == "unknown" else "welcome.unavailable"
            text = {"ru": t("ru", key), "en": t("en", key)}
            self.to_screen(IdentifyResult(busy=False, message=text), welcome)
            return
        if self.screen is not welcome:
            return
        self.to_screen(IdentifyResult(busy=False), welcome)
        self.session = result.session
        self.touch()
        await self.push_screen(
            ServicesScreen(self.lang, result.session, staff=self.staff, recent=self._recent())
        )

    def _recent(self) -> list[tuple[str, int]]:
        if self.session is None:
            return []
        out = []
        for p in self.services.history.payments(self.session.virtual_number)[-5:]:
            if p.stands:
                when = dt.datetime.fromtimestamp(p.intent_ts_ms / 1000).strftime("%d.%m.%Y %H:%M")
                out.append((when, p.amount_minor))
        return out

    def on_demo_card_tapped(self, message: DemoCardTapped) -> None:
        from central_sync.catalog.generator import DEMO_CARD_UIDS

        uids = list(DEMO_CARD_UIDS)
        if 0 <= message.index < len(uids):
            self.services.simulate_card(uids[message.index])

    def on_demo_bill_scanned(self, message: DemoBillScanned) -> None:
        from drivers.scanner.gost_qr import encode_payment_qr
        from drivers.scanner.samples import sample_bill

        bill = sample_bill(persAcc="1000000008", Sum=500_000, paymPeriod="05.2025")
        self.run_worker(self.services.simulate_scan(encode_payment_qr(bill)), group="demo")

    # ------------------------------------------------------------------ services -> amounts

    def on_navigate(self, message: Navigate) -> None:
        from kiosk.screens.amounts import AmountsScreen
        from kiosk.screens.meters import MetersScreen
        from kiosk.screens.statement import StatementScreen

        session = self.session
        if session is None:
            return
        if message.target == "amounts":
            self.push_screen(
                AmountsScreen(self.lang, session, self._basket(session), staff=self.staff)
            )
        elif message.target == "meters":
            points = {
                (line.code, meter.meter_id): self.services.reading_points(
                    session, line.code, meter.meter_id
                )
                for line in session.lines
                for meter in line.view.service.meters
            }
            self.push_screen(MetersScreen(self.lang, session, points, staff=self.staff))
        elif message.target == "statement":
            self.push_screen(StatementScreen(self.lang, session, staff=self.staff))

    @staticmethod
    def _basket(session: AccountSession) -> tuple[BasketItem, ...]:
        if session.bill_sum_minor:
            spread = allocate_sum(session.lines, session.bill_sum_minor)
            return tuple(
                BasketItem(
                    code=line.code,
                    amount_minor=spread.get(line.code, 0),
                    selected=line.code in spread,
                )
                for line in session.lines
            )
        return tuple(
            BasketItem(
                code=line.code,
                amount_minor=default_amount(line, session.today),
                selected=line.is_open,
            )
            for line in session.lines
        )

    def on_amounts_chosen(self, message: AmountsChosen) -> None:
        from kiosk.screens.surcharge import SurchargeScreen

        session = self.session
        if session is None:
            return
        items, problems = build_order(session, message.basket)
        if problems or not items:
            return  # the amount screen shows the problems and keeps Next disabled
        self.quote = quote_surcharges(session, items)
        self.order = Order(
            account=session.virtual_number,
            items=items,
            surcharge_minor=0,
            currency=self.settings.deployment.currency,
            catalog_version=session.view.catalog_version,
            source=session.source,
        )
        if self.quote.needs_decision:
            self.push_screen(SurchargeScreen(self.lang, self.quote, staff=self.staff))
        else:
            self._confirm()

    def on_surcharge_decided(self, message: SurchargeDecided) -> None:
        from kiosk.screens.services import ServicesScreen

        if self.quote is None or self.order is None:
            return
        surcharge = decide_surcharge(self.quote, accepted=message.accepted)
        if surcharge is None:
            logger.info("kiosk_surcharge_declined_payment_cancelled")
            self.order = self.quote = None
            while len(self.screen_stack) > 3 and not isinstance(self.screen, ServicesScreen):
                self.pop_screen()
            notice = {
                "ru": t("ru", "surcharge.declined_cancel"),
                "en": t("en", "surcharge.declined_cancel"),
            }
            self.call_after_refresh(self._notice, notice)
            return
        self.order = Order(
            account=self.order.account,
            items=self.order.items,
            surcharge_minor=surcharge,
            currency=self.order.currency,
            catalog_version=self.order.catalog_version,
            source=self.order.source,
        )
        self._confirm()

    def _notice(self, text: dict[str, str]) -> None:
        from kiosk.messages import Notice

        self.to_screen(Notice(text))

    def _confirm(self) -> None:
        from kiosk.screens.confirm import ConfirmScreen

        assert self.session is not None
        assert self.order is not None
        self.push_screen(ConfirmScreen(self.lang, self.session, self.order, staff=self.staff))

    # ------------------------------------------------------------------ payment

    def on_pay_confirmed(self, message: PayConfirmed) -> None:
        from kiosk.screens.payment import PaymentScreen

        if self.order is None:
            return
        screen = PaymentScreen(self.lang, self.order.total_minor, staff=self.staff)
        self.push_screen(screen)
        self.run_worker(self._pay(self.order, screen), group="payment")

    def on_retry_payment(self, message: RetryPayment) -> None:
        from kiosk.screens.payment import PaymentScreen

        screen = self._top(PaymentScreen)
        if self.order is not None and screen is not None:
            self.run_worker(self._pay(self.order, screen), group="payment")

    async def _pay(self, order: Order, screen: Screen[Any]) -> None:
        def on_update(update: PaymentUpdate) -> None:
            self.to_screen(PaymentProgress(update), screen)

        report = await self.services.pay(order, lang=self.lang, on_update=on_update)
        if report.phase is PaymentPhase.APPROVED:
            await self._show_receipt(report, screen)
        else:
            self.to_screen(PaymentFinished(report), screen)
        self.touch()

    async def _show_receipt(self, report: PaymentReport, payment_screen: Screen[Any]) -> None:
        from drivers.escpos.document import Document, QrCode
        from drivers.escpos.render import render_receipt_text, render_text
        from kiosk.screens.receipt import ReceiptScreen

        lang = self.lang
        receipt = self.services.receipt(report, lang)
        width = self.settings.kiosk.receipt_width_chars
        label = "₽" if lang == "ru" else "RUB"
        text = render_receipt_text(
            receipt, width_chars=width, lang=lang, currency_label=label, qr="label"
        )
        text = text.replace("[QR]", "").rstrip() + "\n"
        qr_text = ""
        if receipt.qr_payload is not None:
            qr_doc = Document(
                elements=(QrCode(data=receipt.qr_payload.encode()),), width_chars=width
            )
            qr_text = render_text(qr_doc, qr="blocks").rstrip("\n")
        screen = ReceiptScreen(lang, text, qr_text, staff=self.staff)
        if self.screen is payment_screen:
            await self.switch_screen(screen)
        else:
            await self.push_screen(screen)
        self.run_worker(self._print_receipt_job(report, receipt, screen), group="print")

    async def _print_receipt_job(
        self, report: PaymentReport, receipt: Any, screen: Screen[Any]
    ) -> None:
        outcome = await self.services.print_receipt(
            receipt, lang=self.lang, payment_id=report.payment_id
        )
        self.to_screen(PrintFinished(outcome), screen)

    def on_cancel_payment_requested(self, message: CancelPaymentRequested) -> None:
        self.run_worker(self.services.cancel_payment(), group="cancel")

    # ------------------------------------------------------------------ meters, statement

    def on_reading_submitted(self, message: ReadingSubmitted) -> None:
        screen = self.screen
        self.run_worker(self._reading(message, screen), group="reading", exclusive=True)

    async def _reading(self, message: ReadingSubmitted, screen: Screen[Any]) -> None:
        session = self.session
        if session is None:
            return
        outcome = await self.services.submit_reading(
            session, message.code, message.meter_id, message.value_milli
        )
        points = self.services.reading_points(session, message.code, message.meter_id)
        self.to_screen(ReadingResult(outcome, points), screen)

    def on_statement_requested(self, message: StatementRequested) -> None:
        from kiosk import documents

        session = self.session
        if session is None:
            return
        start, end = documents.month_window(self.services.today(), message.months)
        payments = self.services.payments_between(session.virtual_number, start, end)
        rows = documents.statement_rows(session.lines, payments, lang=self.lang)
        screen = self.screen
        self.to_screen(
            StatementReady(message.months, start.isoformat(), end.isoformat(), tuple(rows)), screen
        )
        if message.print_it:
            code: Lang = "ru" if self.lang == "ru" else "en"
            account = session.view.account
            document = documents.statement_document(
                account=session.virtual_number,
                holder=account.holder_name(code),
                address=account.address.format(code),
                start=start,
                end=end,
                rows=rows,
                header=self.settings.kiosk.receipt_header,
                lang=self.lang,
                width_chars=self.settings.kiosk.receipt_width_chars,
            )
            self.run_worker(self._print_document(document, screen), group="print")

    async def _print_document(self, document: Any, screen: Screen[Any]) -> None:
        outcome = await self.services.print_document(document)
        self.to_screen(PrintFinished(outcome), screen)

    # ------------------------------------------------------------------ service mode

    def on_service_mode_requested(self, message: ServiceModeRequested) -> None:
        from kiosk.screens.payment import PaymentScreen
        from kiosk.screens.pin import PinScreen
        from kiosk.screens.service_mode import ServiceModeScreen

        screen = self.screen
        if isinstance(screen, PinScreen | ServiceModeScreen):
            return
        if isinstance(screen, PaymentScreen) and screen.running:
            return
        self.push_screen(PinScreen(self.lang, staff=self.staff))

    def on_pin_entered(self, message: PinEntered) -> None:
        self.run_worker(self._check_pin(message.pin, self.screen), group="pin", exclusive=True)

    async def _check_pin(self, pin: str, screen: Screen[Any]) -> None:
        from kiosk.screens.service_mode import ServiceModeScreen

        check = await self.services.check_pin(pin)
        self.to_screen(PinResult(check), screen)
        if check.ok and self.screen is screen:
            now_ms = int(self.services.clock() * 1000)
            await self.switch_screen(ServiceModeScreen(self.lang, staff=self.staff, now_ms=now_ms))
            self.run_worker(self._service_report(self.screen), group="service")

    async def _service_report(self, screen: Screen[Any]) -> None:
        report = await self.services.service_report()
        self.to_screen(ServiceReportReady(report), screen)

    def on_service_action(self, message: ServiceAction) -> None:
        self.run_worker(self._service_action(message.action, self.screen), group="service")

    async def _service_action(self, action: str, screen: Screen[Any]) -> None:
        lang = self.lang

        def both(key: str, **fields: object) -> dict[str, str]:
            return {"ru": t("ru", key, **fields), "en": t("en", key, **fields)}

        what = both(f"service.{action}") if action != "report" else {}
        if action == "report":
            await self._service_report(screen)
            return
        detail: dict[str, str]
        if action == "clear_alarms":
            self.services.clear_alarms()
            ok, detail = True, {}
        elif action == "resolve":
            left = await self.services.recover()
            ok, detail = left == 0, {}
        elif action == "test_receipt":
            outcome = await self.services.print_test_receipt(lang)
            ok, detail = outcome.ok, dict(outcome.reason)
        elif action == "reprint":
            outcome = await self.services.reprint_last(lang)
            ok, detail = outcome.ok, dict(outcome.reason)
        elif action == "end_of_day":
            ok, total, text = await self.services.end_of_day()
            from kiosk.i18n import money

            detail = {
                code: t(
                    code,
                    "service.eod_result",
                    result=text.get(code, ""),
                    amount=money(total or 0, code),
                )
                for code in ("ru", "en")
            }
        else:
            return
        result = {
            code: (
                t(code, "service.done", what=what[code])
                + (f" — {detail[code]}" if detail.get(code) else "")
                if ok
                else t(code, "service.failed", what=what[code], reason=detail.get(code, ""))
            )
            for code in ("ru", "en")
        }
        self.to_screen(ServiceActionDone(ActionText(ok=ok, text=result)), screen)
        await self._service_report(screen)
