"""What this kiosk has done, indexed from its journal: payments and meter readings per account.

Theory of operation: the journal is the only record (DESIGN.md, "The journal");
this is a read model of it, rebuilt at start-up from the journal's tail
(:meth:`KioskHistory.add` per entry, bounded by ``entries_max``) and kept up to
date by the services as they append. It answers what the screens need without
another scan: what was paid here for an account since the catalog was published
(so a debt paid an hour ago is not offered again), the payments of a
statement period, the readings submitted for a meter, and the journal facts
that recovery needs (a cancel request, a reversal that was asked for but not
recorded, the terminal's last receipt number we saw).

Pure: entries in, answers out. Bodies come from our own journal, but they are
still read defensively (``.get`` with types checked): an entry this version
does not understand is skipped, never a crash.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "EVENT_CANCEL_REQUESTED",
    "EVENT_RECEIPT_PRINTED",
    "EVENT_REVERSAL_REQUESTED",
    "KioskHistory",
    "PaymentRecord",
    "ReadingRecord",
]

EVENT_CANCEL_REQUESTED: Final = "payment-cancel-requested"
EVENT_REVERSAL_REQUESTED: Final = "payment-reversal-requested"
EVENT_RECEIPT_PRINTED: Final = "receipt-printed"
PAYMENTS_MAX: Final = 100_000
READINGS_PER_METER_MAX: Final = 240


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(slots=True, kw_only=True)
class PaymentRecord:
    """One kiosk payment as the journal tells it."""

    payment_id: str
    account: str
    amount_minor: int
    currency: str
    intent_seq: int
    intent_ts_ms: int
    items: tuple[tuple[str, int], ...]
    """(service code, kopecks) per paid service."""
    item_bodies: tuple[Mapping[str, Any], ...] = ()
    """The intent's item objects as written (names, provider, period), for receipts."""
    surcharge_minor: int = 0
    receipt_no_before: int | None = None
    receipt_no_known: bool = False
    """Whether the intent recorded the terminal's last receipt number (key present)."""
    outcome: str | None = None
    result_ts_ms: int | None = None
    result_body: Mapping[str, Any] = field(default_factory=dict)
    cancel_requested: bool = False
    reversal_requested: bool = False
    reversed: bool = False
    receipt_printed: bool = False

    @property
    def stands(self) -> bool:
        """Approved and not reversed: the money was taken and stays taken."""
        return self.outcome == "approved" and not self.reversed

    @property
    def receipt_no(self) -> int | None:
        return _int(self.result_body.get("receipt_no"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingRecord:
    """A meter reading submitted at this kiosk."""

    ts_ms: int
    date: str
    value_milli: int


class KioskHistory:
    """The read model (see the module docstring)."""

    def __init__(self, *, payments_max: int = PAYMENTS_MAX) -> None:
        assert payments_max > 0
        self.payments_max = payments_max
        self._payments: OrderedDict[str, PaymentRecord] = OrderedDict()
        self._readings: dict[tuple[str, str], list[ReadingRecord]] = {}
        self.last_receipt_no: int | None = None
        """The terminal's newest receipt number seen in the journal."""
        self.last_receipt_known = False
        self.last_seq = 0

    # ------------------------------------------------------------------ feeding

    def add_all(self, entries: Iterable[Any]) -> None:
        for entry in entries:
            self.add(entry)

    def add(self, entry: Any) -> None:
        """Take one journal entry (anything with seq, kind, ts_ms, body)."""
        seq, kind, ts_ms, body = entry.seq, entry.kind, entry.ts_ms, entry.body
        if seq <= self.last_seq:
            return  # already seen (the services add what they append, then a re-read may repeat)
        self.last_seq = seq
        if not isinstance(body, Mapping):
            return
        if kind == "payment-intent":
            self._intent(seq, ts_ms, body)
        elif kind == "payment-result":
            self._result(ts_ms, body)
        elif kind == "reversal":
            record = self._payments.get(_str(body.get("payment_id")) or "")
            if record is not None:
                record.reversed = True
            self._saw_receipt(body.get("receipt_no"), "receipt_no" in body)
        elif kind == "device-event":
            self._device_event(body)
        elif kind == "meter-reading":
            self._reading(ts_ms, body)
        elif kind == "end-of-day" and "receipt_no" in body:
            self._saw_receipt(body.get("receipt_no"), True)

    def _saw_receipt(self, value: Any, present: bool) -> None:
        if present:
            self.last_receipt_no = _int(value)
            self.last_receipt_known = True

    def _intent(self, seq: int, ts_ms: int, body: Mapping[str, Any]) -> None:
        pid, account = _str(body.get("payment_id")), _str(body.get("account"))
        amount, currency = _int(body.get("amount_minor")), _str(body.get("currency"))
        if pid is None or account is None or amount is None or currency is None:
            return
        items: list[tuple[str, int]] = []
        bodies: list[Mapping[str, Any]] = []
        raw_items = body.get("items")
        if isinstance(raw_items, list):
            for item in raw_items:
                if isinstance(item, Mapping):
                    code, value = _str(item.get("service")), _int(item.get("amount_minor"))
                    if code is not None and value is not None and value > 0:
                        items.append((code, value))
                        bodies.append(dict(item))
        self._payments[pid] = PaymentRecord(
            payment_id=pid,
            account=account,
            amount_minor=amount,
            currency=currency,
            intent_seq=seq,
            intent_ts_ms=ts_ms,
            items=tuple(items),
            item_bodies=tuple(bodies),
            surcharge_minor=_int(body.get("surcharge_minor")) or 0,
            receipt_no_before=_int(body.get("terminal_receipt_before")),
            receipt_no_known="terminal_receipt_before" in body,
        )
        while len(self._payments) > self.payments_max:
            self._payments.popitem(last=False)

    def _result(self, ts_ms: int, body: Mapping[str, Any]) -> None:
        record = self._payments.get(_str(body.get("payment_id")) or "")
        if record is not None:
            record.outcome = _str(body.get("outcome"))
            record.result_ts_ms = ts_ms
            record.result_body = dict(body)
        self._saw_receipt(body.get("receipt_no"), "receipt_no" in body)

    def _device_event(self, body: Mapping[str, Any]) -> None:
        event = body.get("event")
        record = self._payments.get(_str(body.get("payment_id")) or "")
        if record is None:
            return
        if event == EVENT_CANCEL_REQUESTED:
            record.cancel_requested = True
        elif event == EVENT_REVERSAL_REQUESTED:
            record.reversal_requested = True
        elif event == EVENT_RECEIPT_PRINTED:
            record.receipt_printed = True

    def _reading(self, ts_ms: int, body: Mapping[str, Any]) -> None:
        account, meter = _str(body.get("account")), _str(body.get("meter_id"))
        value, date = _int(body.get("reading_milli")), _str(body.get("date"))
        if account is None or meter is None or value is None or date is None:
            return
        rows = self._readings.setdefault((account, meter), [])
        rows.append(ReadingRecord(ts_ms=ts_ms, date=date, value_milli=value))
        if len(rows) > READINGS_PER_METER_MAX:
            del rows[0]

    # ------------------------------------------------------------------ answers

    def payment(self, payment_id: str) -> PaymentRecord | None:
        return self._payments.get(payment_id)

    def payments(
        self, account: str, start_ms: int = 0, end_ms: int | None = None
    ) -> list[PaymentRecord]:
        """Payments of ``account`` whose intent falls in [start_ms, end_ms), oldest first."""
        return [
            p
            for p in self._payments.values()
            if p.account == account
            and p.intent_ts_ms >= start_ms
            and (end_ms is None or p.intent_ts_ms < end_ms)
        ]

    def paid_since(self, account: str, since_ms: int) -> dict[str, int]:
        """Kopecks per service code of ``account``'s payments that stand, since ``since_ms``."""
        out: dict[str, int] = {}
        for p in self.payments(account, since_ms):
            if p.stands:
                for code, amount in p.items:
                    out[code] = out.get(code, 0) + amount
        return out

    def unresolved(self) -> list[PaymentRecord]:
        """Intents without a result, oldest first (outcome-unknown payments)."""
        return [p for p in self._payments.values() if p.outcome is None]

    def reversals_pending(self) -> list[PaymentRecord]:
        """Reversals asked for whose result was never recorded."""
        return [p for p in self._payments.values() if p.reversal_requested and not p.reversed]

    def last_payment(self) -> PaymentRecord | None:
        """The newest payment that stands (for "reprint last receipt")."""
        for p in reversed(self._payments.values()):
            if p.stands:
                return p
        return None

    def readings(self, account: str, meter_id: str) -> list[ReadingRecord]:
        return list(self._readings.get((account, meter_id), ()))
