"""Real-time printer status: DLE EOT n (Epson ESC/POS command reference, "DLE EOT").

The host sends ``10 04 n`` and the printer answers one byte at once, even while
its receive buffer is full or it is offline. Every reply byte has fixed bits:
bit 0 = 0, bit 1 = 1, bit 4 = 1, bit 7 = 0 (mask ``0x93``, value ``0x12``); a reply
without them is not a status byte (noise, an ASB packet, another device) and is
reported as :class:`StatusByteError`, never guessed at.

Meaning of the free bits, per request ``n``:

=====  ====================  ================================================
n      bit                   meaning when set
=====  ====================  ================================================
1      2                     drawer kick-out connector pin 3 is high
1      3                     offline
1      5                     waiting for online recovery
1      6                     paper feed button pressed
2      2                     cover open
2      3                     paper being fed by the feed button
2      5                     printing stopped by paper end
2      6                     an error occurred
3      2                     recoverable error
3      3                     autocutter error
3      5                     unrecoverable error
3      6                     automatically recoverable error (e.g. head hot)
4      2-3                   roll paper near-end sensor: paper near its end
4      5-6                   roll paper end sensor: no paper
=====  ====================  ================================================

The two-bit paper fields are ``00`` or ``11`` in the reference. Some
Epson-compatible printers set only one bit of a pair; we read either bit as set,
because reporting "paper low" once too often is cheaper than a lost receipt.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import (
    CoverOpenError,
    PaperOutError,
    PrinterHardwareError,
    PrinterOfflineError,
    StatusByteError,
)

__all__ = [
    "STATUS_FIXED_MASK",
    "STATUS_FIXED_VALUE",
    "PrinterStatus",
    "StatusRequest",
    "check_ready",
    "encode_status",
    "parse_status",
    "parse_status_byte",
    "status_query",
]

STATUS_FIXED_MASK = 0x93
STATUS_FIXED_VALUE = 0x12

_B2 = 0x04
_B3 = 0x08
_B5 = 0x20
_B6 = 0x40


class StatusRequest(enum.IntEnum):
    """The ``n`` of DLE EOT n that this driver uses."""

    PRINTER = 1
    OFFLINE_CAUSE = 2
    ERROR_CAUSE = 3
    PAPER_SENSOR = 4


def status_query(requests: tuple[StatusRequest, ...] = tuple(StatusRequest)) -> bytes:
    """The bytes asking for each status in ``requests`` (``10 04 n`` each)."""
    return b"".join(bytes((0x10, 0x04, int(n))) for n in requests)


def parse_status_byte(request: int, value: int) -> dict[str, bool]:
    """Decode one DLE EOT reply byte into named flags.

    Raises :class:`StatusByteError` if the fixed bits are wrong or ``value`` is not
    a byte; ``request`` must be 1..4 (our own call, so an assertion).
    """
    assert request in (1, 2, 3, 4), request
    if not 0 <= value <= 0xFF or value & STATUS_FIXED_MASK != STATUS_FIXED_VALUE:
        raise StatusByteError(request, value & 0xFF if value >= 0 else 0)
    if request == StatusRequest.PRINTER:
        return {
            "drawer_pin3_high": bool(value & _B2),
            "offline": bool(value & _B3),
            "waiting_online_recovery": bool(value & _B5),
            "feed_button_pressed": bool(value & _B6),
        }
    if request == StatusRequest.OFFLINE_CAUSE:
        return {
            "cover_open": bool(value & _B2),
            "feeding_by_button": bool(value & _B3),
            "stopped_by_paper_end": bool(value & _B5),
            "error": bool(value & _B6),
        }
    if request == StatusRequest.ERROR_CAUSE:
        return {
            "recoverable_error": bool(value & _B2),
            "autocutter_error": bool(value & _B3),
            "unrecoverable_error": bool(value & _B5),
            "auto_recoverable_error": bool(value & _B6),
        }
    return {
        "paper_near_end": bool(value & (_B2 | _B3)),
        "paper_out": bool(value & (_B5 | _B6)),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class PrinterStatus:
    """The printer's state as DLE EOT 1-4 report it (see the module table)."""

    online: bool = True
    cover_open: bool = False
    paper_near_end: bool = False
    paper_out: bool = False
    error: bool = False
    recoverable_error: bool = False
    autocutter_error: bool = False
    unrecoverable_error: bool = False
    auto_recoverable_error: bool = False
    drawer_pin3_high: bool = False
    feed_button_pressed: bool = False
    waiting_online_recovery: bool = False
    feeding_by_button: bool = False
    stopped_by_paper_end: bool = False

    def __post_init__(self) -> None:
        # Flags are plain bools; anything else is a bug in the code building it.
        for name in self.__slots__:
            assert isinstance(getattr(self, name), bool), name

    @property
    def ready(self) -> bool:
        """True when nothing stops printing."""
        return (
            self.online
            and not self.cover_open
            and not self.paper_out
            and not self.unrecoverable_error
            and not self.autocutter_error
        )

    def as_dict(self) -> dict[str, bool]:
        """Flags by name, for JSON output and logs."""
        return {name: getattr(self, name) for name in self.__slots__}


def parse_status(replies: dict[int, int]) -> PrinterStatus:
    """Combine the replies to DLE EOT 1..4 (keyed by ``n``) into a :class:`PrinterStatus`.

    Requests missing from ``replies`` leave their flags at the "no fault" default.
    """
    flags: dict[str, bool] = {}
    for request in sorted(replies):
        flags.update(parse_status_byte(request, replies[request]))
    offline = flags.pop("offline", False)
    return PrinterStatus(online=not offline, **flags)


def encode_status(status: PrinterStatus) -> dict[int, int]:
    """The reply byte for each DLE EOT n that describes ``status`` (simulator side)."""

    def byte(*bits: tuple[bool, int]) -> int:
        value = STATUS_FIXED_VALUE
        for on, mask in bits:
            if on:
                value |= mask
        return value

    return {
        1: byte(
            (status.drawer_pin3_high, _B2),
            (not status.online, _B3),
            (status.waiting_online_recovery, _B5),
            (status.feed_button_pressed, _B6),
        ),
        2: byte(
            (status.cover_open, _B2),
            (status.feeding_by_button, _B3),
            (status.stopped_by_paper_end, _B5),
            (status.error, _B6),
        ),
        3: byte(
            (status.recoverable_error, _B2),
            (status.autocutter_error, _B3),
            (status.unrecoverable_error, _B5),
            (status.auto_recoverable_error, _B6),
        ),
        4: byte((status.paper_near_end, _B2 | _B3), (status.paper_out, _B5 | _B6)),
    }


def check_ready(status: PrinterStatus, *, lines_sent: int = 0, lines_total: int = 0) -> None:
    """Raise the typed fault that stops printing, most specific first; else return.

    Order: a hardware fault needs a technician whatever else is wrong; an open
    cover hides the paper sensor on most mechanisms, so it comes before paper out;
    "offline" with no known cause is last.
    """
    if status.unrecoverable_error or status.autocutter_error:
        raise PrinterHardwareError("unrecoverable or autocutter error")
    if status.cover_open:
        raise CoverOpenError("cover open")
    if status.paper_out or status.stopped_by_paper_end:
        raise PaperOutError("paper out", lines_sent=lines_sent, lines_total=lines_total)
    if not status.online:
        raise PrinterOfflineError("printer offline")
