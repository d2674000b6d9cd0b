"""The error taxonomy of the ZVT driver.

Every error the driver raises derives from :class:`ZvtError`. The split follows
CONVENTIONS rule 10:

* local misuse of the API (:class:`ZvtUsageError`) versus what the terminal or
  the wire did (:class:`ZvtFrameError`, :class:`ZvtProtocolError`);
* temporary versus permanent device errors (``temporary`` decides retry);
* ``outcome_unknown`` marks an error raised after a payment command may have
  reached the terminal: the caller must not retry blindly but run recovery
  (``ZvtTerminal.last_transaction()``) and reverse or record.

Messages never contain card data, passwords or raw frame bytes: only control
fields, lengths and result codes.
"""

from __future__ import annotations

from typing import ClassVar


class ZvtError(Exception):
    """Base of every error raised by ``drivers.zvt``."""

    temporary: ClassVar[bool] = False
    title: ClassVar[dict[str, str]] = {
        "en": "Payment terminal error",
        "ru": "Ошибка платёжного терминала",
    }
    next_step: ClassVar[dict[str, str]] = {
        "en": "Call a technician.",
        "ru": "Обратитесь к технику.",
    }

    def __init__(self, message: str, *, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


class ZvtUsageError(ZvtError, ValueError):
    """Our own code called the driver wrongly (bad argument, wrong state)."""


class ZvtFrameError(ZvtError):
    """Serial/TCP framing failed: bad CRC, truncated or oversize frame, repeated NAK.

    ZVT transport protocol (PA00P016), serial framing: a bad frame is answered
    with NAK and retransmitted; this error is raised only when the protocol gives
    up. It is temporary: the link may work again after a reconnect.
    """

    temporary: ClassVar[bool] = True
    title: ClassVar[dict[str, str]] = {
        "en": "Connection to the payment terminal is unreliable",
        "ru": "Нестабильная связь с платёжным терминалом",
    }
    next_step: ClassVar[dict[str, str]] = {
        "en": "Check the terminal cable; retry.",
        "ru": "Проверьте кабель терминала и повторите.",
    }


class ZvtProtocolError(ZvtError):
    """The terminal sent something the protocol does not allow here.

    Unknown or unexpected command, or a message in the wrong session state.
    """


class ZvtApduError(ZvtProtocolError):
    """An APDU, BMP field or TLV container is malformed (ZVT chapter 1 and 9)."""


class ZvtTimeout(ZvtError):
    """A wait ran past its limit; ``stage`` names what we were waiting for."""

    temporary: ClassVar[bool] = True
    title: ClassVar[dict[str, str]] = {
        "en": "The payment terminal does not answer",
        "ru": "Платёжный терминал не отвечает",
    }
    next_step: ClassVar[dict[str, str]] = {
        "en": "Wait a minute and retry; check the terminal power and cable.",
        "ru": "Подождите минуту и повторите; проверьте питание и кабель терминала.",
    }

    def __init__(self, message: str, *, stage: str, outcome_unknown: bool = False) -> None:
        super().__init__(message, outcome_unknown=outcome_unknown)
        self.stage = stage


class ZvtDeviceError(ZvtError):
    """The terminal or its connection failed; see ``temporary``."""


class ZvtTemporaryDeviceError(ZvtDeviceError):
    """Port closed, TCP broken, terminal busy: retrying later may succeed."""

    temporary: ClassVar[bool] = True
    title: ClassVar[dict[str, str]] = {
        "en": "The payment terminal is not available",
        "ru": "Платёжный терминал недоступен",
    }
    next_step: ClassVar[dict[str, str]] = {
        "en": "Retry in a moment; check the cable or network.",
        "ru": "Повторите через минуту; проверьте кабель или сеть.",
    }


class ZvtPermanentDeviceError(ZvtDeviceError):
    """The device cannot work as configured (no such port, wrong URL, refused)."""


class ZvtCommandRejected(ZvtDeviceError):
    """The terminal answered our command with a negative acknowledgement ``84 xx``.

    Nothing was booked: the terminal refused before starting. ``result_code`` is
    the ZVT error code (chapter 10, error messages).
    """

    # Codes that mean "not now" rather than "never": please wait, receiver not
    # ready, no connection, terminal busy with an end-of-day, memory full.
    TEMPORARY_CODES: ClassVar[frozenset[int]] = frozenset(
        {0x9C, 0xA0, 0xA1, 0xA3, 0x0F, 0xB1, 0xDC, 0xE1}
    )

    def __init__(self, message: str, *, result_code: int) -> None:
        super().__init__(message)
        self.result_code = result_code

    @property
    def is_temporary(self) -> bool:
        """True when retrying the same command later may succeed."""
        return self.result_code in self.TEMPORARY_CODES
