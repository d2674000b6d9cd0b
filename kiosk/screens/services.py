"""Services: every service of the account with what is owed, period, provider, instalments."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Static

from kiosk.i18n import Lang, money, period_label, t
from kiosk.messages import GoBack, Navigate, Notice, StaffStatusChanged
from kiosk.model import AccountSession, ServiceLine
from kiosk.screens.base import KioskScreen
from kiosk.services import StaffStatus


def account_heading(session: AccountSession, lang: str) -> str:
    """The masked holder and the address, in the screen's language."""
    account = session.view.account
    code: Lang = "ru" if lang == "ru" else "en"
    return t(
        lang,
        "services.holder",
        holder=account.holder_name(code),
        address=account.address.format(code),
    )


class ServicesScreen(KioskScreen):
    """Open (owed) and Paid views of the account's services."""

    TITLE_KEY = "services.title"
    DEFAULT_CSS = """
    ServicesScreen #heading { height: auto; padding: 0 1; text-style: bold; }
    ServicesScreen #notice { height: auto; padding: 0 1; color: $warning; text-style: bold; }
    ServicesScreen #views { height: 3; }
    ServicesScreen #views > Button { width: 20; }
    ServicesScreen #table { height: 1fr; }
    ServicesScreen #notes { height: auto; max-height: 8; padding: 0 1; color: $text-muted; }
    ServicesScreen #total { height: 1; padding: 0 1; text-style: bold; }
    ServicesScreen #nav { height: 3; }
    ServicesScreen #nav > Button { margin-right: 1; }
    ServicesScreen #pay { dock: right; }
    """

    def __init__(
        self,
        lang: str,
        session: AccountSession,
        *,
        staff: StaffStatus | None = None,
        recent: Sequence[tuple[str, int]] = (),
    ) -> None:
        super().__init__(lang, staff)
        self.session = session
        self.recent = tuple(recent)
        self.view = "open"
        self.notice: dict[str, str] | None = None

    def title_text(self) -> str:
        return t(self.lang, self.TITLE_KEY, account=self.session.virtual_number)

    def compose_body(self) -> ComposeResult:
        yield Static(id="heading")
        yield Static(id="notice")
        with Horizontal(id="views"):
            yield Button("", id="view-open")
            yield Button("", id="view-paid")
        yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
        yield Static(id="notes")
        yield Static(id="total")
        with Horizontal(id="nav"):
            yield Button("", id="back")
            yield Button("", id="meters")
            yield Button("", id="statement")
            yield Button("", id="pay", variant="success")

    def apply_language(self) -> None:
        super().apply_language()
        lang = self.lang
        self.query_one("#heading", Static).update(Text(account_heading(self.session, lang)))
        notice = self.notice.get(lang, "") if self.notice else ""
        self.query_one("#notice", Static).update(Text(notice))
        self.query_one("#view-open", Button).label = t(lang, "services.open")
        self.query_one("#view-paid", Button).label = t(lang, "services.paid")
        self.query_one("#back", Button).label = t(lang, "back")
        self.query_one("#meters", Button).label = t(lang, "services.meters")
        self.query_one("#statement", Button).label = t(lang, "services.statement")
        self.query_one("#pay", Button).label = t(lang, "services.pay")
        has_meters = any(line.view.service.meters for line in self.session.lines)
        self.query_one("#meters", Button).display = has_meters
        paused = self.staff is not None and self.staff.payments_paused
        self.query_one("#pay", Button).disabled = not self.session.open_lines or paused
        self.query_one("#total", Static).update(
            t(lang, "services.total_due", amount=money(self.session.total_outstanding_minor, lang))
        )
        self._fill()

    def _amount_cell(self, line: ServiceLine) -> Text:
        lang = self.lang
        if line.is_open:
            text = money(line.outstanding_minor, lang)
            if line.paid_here_minor:
                text += (
                    " ("
                    + t(lang, "services.paid_here", amount=money(line.paid_here_minor, lang))
                    + ")"
                )
            return Text(text, justify="right")
        if line.debt_minor < 0:
            return Text(
                t(lang, "services.overpaid", amount=money(-line.debt_minor, lang)), style="green"
            )
        return Text(t(lang, "services.nothing_due"), style="green")

    def _fill(self) -> None:
        lang = self.lang
        table = self.query_one("#table", DataTable)
        table.clear(columns=True)
        table.add_column(t(lang, "services.col_service"), key="service")
        table.add_column(t(lang, "services.col_provider"), key="provider")
        table.add_column(t(lang, "services.col_period"), key="period")
        table.add_column(t(lang, "services.col_due"), key="due")
        lines = self.session.open_lines if self.view == "open" else self.session.paid_lines
        for line in lines:
            table.add_row(
                Text(line.name(lang)),
                Text(line.provider_name(lang), overflow="ellipsis", no_wrap=True),
                Text(period_label(line.view.service.period, lang)),
                self._amount_cell(line),
                key=line.code,
            )
        notes: list[str] = []
        if not lines:
            notes.append(
                t(lang, "services.none_open" if self.view == "open" else "services.none_paid")
            )
        if self.view == "open":
            for line in lines:
                plan = line.view.service.instalments
                if plan:
                    notes.append(t(lang, "services.instalments", service=line.name(lang)))
                    notes.extend(
                        "  "
                        + t(
                            lang,
                            "services.instalment_row",
                            date=i.due_date,
                            amount=money(i.amount_minor, lang),
                        )
                        for i in plan
                        if i.due_date >= self.session.today
                    )
        elif self.recent:
            notes.append(t(lang, "services.recent"))
            notes.extend(f"  {when}  {money(amount, lang)}" for when, amount in self.recent)
        self.query_one("#notes", Static).update(Text("\n".join(notes)))
        open_button = self.query_one("#view-open", Button)
        paid_button = self.query_one("#view-paid", Button)
        open_button.variant = "primary" if self.view == "open" else "default"
        paid_button.variant = "primary" if self.view == "paid" else "default"

    def on_staff_status_changed(self, message: StaffStatusChanged) -> None:
        super().on_staff_status_changed(message)
        # Payments may become possible (start-up done) or pause (an unknown outcome).
        paused = self.staff is not None and self.staff.payments_paused
        self.query_one("#pay", Button).disabled = not self.session.open_lines or paused

    def on_notice(self, message: Notice) -> None:
        self.notice = dict(message.text)
        self.apply_language()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id
        if button == "view-open":
            self.view = "open"
            self._fill()
        elif button == "view-paid":
            self.view = "paid"
            self._fill()
        elif button == "back":
            self.post_message(GoBack())
        elif button in ("meters", "statement"):
            self.post_message(Navigate(button))
        elif button == "pay":
            self.post_message(Navigate("amounts"))
