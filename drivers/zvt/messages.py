"""ZVT commands (ECR → PT) and messages (PT → ECR) as frozen dataclasses.

Each class knows its control field and converts to and from an :class:`Apdu`
(``to_apdu`` / ``from_apdu``), so the ECR driver and the terminal simulator
share one codec. Chapters refer to the ZVT ECR interface specification rev. 13
(PA00P015); field layouts were checked against the Wireshark dissector and
captures published with open ECR libraries.

ECR → PT: Registration 06 00, Authorization 06 01, Repeat Receipt 06 20,
Reversal 06 30, End-of-Day 06 50, Abort 06 B0 (the ECR's abort request),
Status Enquiry 05 01.
PT → ECR: Status-Information 04 0F, Intermediate Status 04 FF, Completion
06 0F, Abort 06 1E, Print Line 06 D1, Print Text Block 06 D3.
Both ways: positive acknowledgement 80 00, negative acknowledgement 84 xx.

Decoding never keeps card data (see :mod:`drivers.zvt.fields`). Fields that
only serve display (card name, date, texts) are decoded leniently; fields that
carry money or identify a transaction (amount, receipt and trace numbers,
result code) are strict, and a malformed one is a :class:`ZvtApduError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Final, TypeVar

from drivers.zvt import codes
from drivers.zvt.apdu import Apdu
from drivers.zvt.errors import ZvtApduError, ZvtError, ZvtProtocolError, ZvtUsageError
from drivers.zvt.fields import (
    BMP_ADDITIONAL_TEXT,
    BMP_AMOUNT,
    BMP_AUTH_ATTRIBUTE,
    BMP_CARD_NAME,
    BMP_CARD_TYPE,
    BMP_CARD_TYPE_ID,
    BMP_CURRENCY,
    BMP_DATE,
    BMP_MAX_STATUS_INFOS,
    BMP_PAN,
    BMP_PAYMENT_TYPE,
    BMP_RECEIPT,
    BMP_RESULT,
    BMP_SERVICE_BYTE,
    BMP_TERMINAL_ID,
    BMP_TIME,
    BMP_TIMEOUT,
    BMP_TOTALS,
    BMP_TRACE,
    BMP_TURNOVER,
    FULL_PAN_RUN,
    BmpFields,
    TlvItem,
    decode_bcd,
    decode_bmps,
    decode_var_length,
    encode_bcd,
    encode_bmp,
    encode_pan,
    encode_tlv_container,
    encode_var_length,
    find_all_tlv,
    find_tlv,
    scrub_text,
)

AMOUNT_MINOR_MAX: Final = 999_999_999_999  # 6 bytes of BCD
PASSWORD_MAX: Final = 999_999  # 3 bytes of BCD
RECEIPT_NO_MAX: Final = 9999  # 2 bytes of BCD
TRACE_NO_MAX: Final = 999_999  # 3 bytes of BCD

# Registration config byte (chapter 2.1): ECR prints payment (0x02) and
# administration (0x04) receipts, wants intermediate status (0x08), amount
# input (0x10) and administration (0x20) only from the ECR, and receives the
# receipt text line by line (0x80). A kiosk prints on its own printer.
CONFIG_ECR_PRINTS_PAYMENT: Final = 0x02
CONFIG_ECR_PRINTS_ADMIN: Final = 0x04
CONFIG_INTERMEDIATE_STATUS: Final = 0x08
CONFIG_ECR_CONTROLS_PAYMENT: Final = 0x10
CONFIG_ECR_CONTROLS_ADMIN: Final = 0x20
CONFIG_PRINT_VIA_PRINT_LINE: Final = 0x80
DEFAULT_CONFIG_BYTE: Final = (
    CONFIG_ECR_PRINTS_PAYMENT
    | CONFIG_ECR_PRINTS_ADMIN
    | CONFIG_INTERMEDIATE_STATUS
    | CONFIG_ECR_CONTROLS_PAYMENT
    | CONFIG_ECR_CONTROLS_ADMIN
    | CONFIG_PRINT_VIA_PRINT_LINE
)

# Payment type (BMP 19 in Status-Information): 0x40 means the terminal booked
# the payment offline (chapter 9, BMP 19; 0x50 card decides, 0x60 online,
# 0x70 PIN-based). TLV tag 1F11 "online flag" (0 offline, 1 online) wins when
# present.
PAYMENT_TYPE_OFFLINE: Final = 0x40
PAYMENT_TYPE_ONLINE: Final = 0x60
TLV_ONLINE_FLAG: Final = 0x1F11
TLV_TEXT_LINES: Final = 0x07
TLV_PRINT_TEXTS: Final = 0x25
TLV_RECEIPT_TYPE: Final = 0x1F07

NACK_UNKNOWN_COMMAND: Final = 0x83  # "function not possible"
NACK_MALFORMED: Final = 0x9A  # "transfer protocol error"


def _check_range(name: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise ZvtUsageError(f"{name} must be within {low}..{high}")


def currency_number(alpha: str) -> int:
    """ISO 4217 numeric code for an alphabetic one we support."""
    try:
        return codes.CURRENCIES[alpha]
    except KeyError:
        raise ZvtUsageError(f"unsupported currency {alpha!r}") from None


def currency_alpha(number: int) -> str:
    """Alphabetic code for a numeric one; unknown numbers stay numeric ("643")."""
    return codes.CURRENCY_BY_NUMBER.get(number, f"{number:03d}")


def _currency_bytes(alpha: str) -> bytes:
    return encode_bcd(currency_number(alpha), 2)


T = TypeVar("T")


def _lenient(fn: Callable[[], T]) -> T | None:
    """Display-only fields: a malformed value becomes None instead of an error."""
    try:
        return fn()
    except ZvtApduError:
        return None


# ============================================================ acknowledgements


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """Positive acknowledgement ``80 00 00`` (chapter 1.3)."""

    CONTROL: ClassVar[tuple[int, int]] = (0x80, 0x00)

    def to_apdu(self) -> Apdu:
        """Encode."""
        return Apdu(cls=0x80, instr=0x00)

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> Ack:
        """Decode (any data after 80 00 is ignored, as the dissector does)."""
        return cls()


@dataclass(frozen=True, slots=True, kw_only=True)
class Nack:
    """Negative acknowledgement ``84 xx 00``; ``error_code`` is the ZVT error code."""

    CONTROL: ClassVar[tuple[int, int]] = (0x84, 0x00)
    error_code: int

    def __post_init__(self) -> None:
        _check_range("error_code", self.error_code, 0, 0xFF)

    def message(self, lang: codes.Lang = "en") -> str:
        """Text of the error code."""
        return codes.result_text(self.error_code, lang)

    def to_apdu(self) -> Apdu:
        """Encode."""
        return Apdu(cls=0x84, instr=self.error_code)

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> Nack:
        """Decode."""
        return cls(error_code=apdu.instr)


# ================================================================ ECR → PT


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """Registration 06 00 (chapter 2.1).

    ``<password> <config-byte> [<CC> [03 <service-byte>] [06 <TLV>]]``.
    """

    CONTROL: ClassVar[tuple[int, int]] = (0x06, 0x00)
    password: int = field(default=0, repr=False)
    config_byte: int = DEFAULT_CONFIG_BYTE
    currency: str | None = "RUB"
    service_byte: int | None = None
    tlv: tuple[TlvItem, ...] | None = None

    def __post_init__(self) -> None:
        _check_range("password", self.password, 0, PASSWORD_MAX)
        _check_range("config_byte", self.config_byte, 0, 0xFF)
        _check_range("service_byte", self.service_byte, 0, 0xFF)
        if self.currency is not None:
            currency_number(self.currency)
        elif self.service_byte is not None or self.tlv is not None:
            raise ZvtUsageError("service byte and TLV need a currency before them")

    def to_apdu(self) -> Apdu:
        """Encode."""
        data = encode_bcd(self.password, 3) + bytes((self.config_byte,))
        if self.currency is not None:
            data += _currency_bytes(self.currency)
            if self.service_byte is not None:
                data += encode_bmp(BMP_SERVICE_BYTE, bytes((self.service_byte,)))
            if self.tlv is not None:
                data += encode_tlv_container(self.tlv)
        return Apdu(cls=0x06, instr=0x00, data=data)

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> Registration:
        """Decode (used by the simulator)."""
        data = apdu.data
        if len(data) < 4:
            raise ZvtApduError("Registration shorter than password + config byte")
        password = decode_bcd(data[:3], what="password")
        config = data[3]
        currency: str | None = None
        fields = BmpFields()
        if len(data) >= 6:
            currency = currency_alpha(decode_bcd(data[4:6], what="currency"))
            fields = decode_bmps(data, 6)
        try:
            return cls(
                password=password,
                config_byte=config,
                currency=currency if currency in codes.CURRENCIES else None,
                service_byte=fields.byte(BMP_SERVICE_BYTE),
                tlv=fields.tlv,
            )
        except ZvtUsageError as exc:
            raise ZvtApduError(f"Registration: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Authorization:
    """Authorization 06 01 (chapter 2.2).

    ``04 <amount> [49 <CC>] [19 <payment-type>] [01 <timeout>] [02 <max-status>] [06 <TLV>]``.
    """

    CONTROL: ClassVar[tuple[int, int]] = (0x06, 0x01)
    amount_minor: int
    currency: str | None = "RUB"
    payment_type: int | None = None
    timeout_s: int | None = None
    max_status_infos: int | None = None
    tlv: tuple[TlvItem, ...] | None = None

    def __post_init__(self) -> None:
        _check_range("amount_minor", self.amount_minor, 1, AMOUNT_MINOR_MAX)
        _check_range("payment_type", self.payment_type, 0, 0xFF)
        _check_range("timeout_s", self.timeout_s, 0, 0xFF)
        _check_range("max_status_infos", self.max_status_infos, 0, 0xFF)
        if self.currency is not None:
            currency_number(self.currency)

    def to_apdu(self) -> Apdu:
        """Encode."""
        data = encode_bmp(BMP_AMOUNT, encode_bcd(self.amount_minor, 6))
        if self.currency is not None:
            data += encode_bmp(BMP_CURRENCY, _currency_bytes(self.currency))
        if self.payment_type is not None:
            data += encode_bmp(BMP_PAYMENT_TYPE, bytes((self.payment_type,)))
        if self.timeout_s is not None:
            data += encode_bmp(BMP_TIMEOUT, bytes((self.timeout_s,)))
        if self.max_status_infos is not None:
            data += encode_bmp(BMP_MAX_STATUS_INFOS, bytes((self.max_status_infos,)))
        if self.tlv is not None:
            data += encode_tlv_container(self.tlv)
        return Apdu(cls=0x06, instr=0x01, data=data)

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> Authorization:
        """Decode (used by the simulator)."""
        fields = decode_bmps(apdu.data)
        amount = fields.bcd(BMP_AMOUNT)
        if amount is None:
            raise ZvtApduError("Authorization without amount")
        cc = fields.bcd(BMP_CURRENCY)
        try:
            return cls(
                amount_minor=amount,
                currency=currency_alpha(cc) if cc is not None else None,
                payment_type=fields.byte(BMP_PAYMENT_TYPE),
                timeout_s=fields.byte(BMP_TIMEOUT),
                max_status_infos=fields.byte(BMP_MAX_STATUS_INFOS),
                tlv=fields.tlv,
            )
        except ZvtUsageError as exc:
            raise ZvtApduError(f"Authorization: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reversal:
    """Reversal 06 30 (chapter 2.12): ``<password> 87 <receipt-no> [04 <amount>] [49 <CC>]``."""

    CONTROL: ClassVar[tuple[int, int]] = (0x06, 0x30)
    receipt_no: int
    password: int = field(default=0, repr=False)
    amount_minor: int | None = None
    currency: str | None = None

    def __post_init__(self) -> None:
        _check_range("receipt_no", self.receipt_no, 0, RECEIPT_NO_MAX)
        _check_range("password", self.password, 0, PASSWORD_MAX)
        _check_range("amount_minor", self.amount_minor, 1, AMOUNT_MINOR_MAX)
        if self.currency is not None:
            currency_number(self.currency)

    def to_apdu(self) -> Apdu:
        """Encode."""
        data = encode_bcd(self.password, 3) + encode_bmp(
            BMP_RECEIPT, encode_bcd(self.receipt_no, 2)
        )
        if self.amount_minor is not None:
            data += encode_bmp(BMP_AMOUNT, encode_bcd(self.amount_minor, 6))
        if self.currency is not None:
            data += encode_bmp(BMP_CURRENCY, _currency_bytes(self.currency))
        return Apdu(cls=0x06, instr=0x30, data=data)

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> Reversal:
        """Decode (used by the simulator)."""
        if len(apdu.data) < 3:
            raise ZvtApduError("Reversal without password")
        password = decode_bcd(apdu.data[:3], what="password")
        fields = decode_bmps(apdu.data, 3)
        receipt = fields.bcd(BMP_RECEIPT)
        if receipt is None:
            raise ZvtApduError("Reversal without receipt number")
        cc = fields.bcd(BMP_CURRENCY)
        try:
            return cls(
                receipt_no=receipt,
                password=password,
                amount_minor=fields.bcd(BMP_AMOUNT),
                currency=currency_alpha(cc) if cc is not None else None,
            )
        except ZvtUsageError as exc:
            raise ZvtApduError(f"Reversal: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class _PasswordOnly:
    """A command whose data is just the 3-byte BCD password."""

    CONTROL: ClassVar[tuple[int, int]] = (0x00, 0x00)
    password: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        _check_range("password", self.password, 0, PASSWORD_MAX)

    def to_apdu(self) -> Apdu:
        """Encode."""
        cls_, instr = self.CONTROL
        return Apdu(cls=cls_, instr=instr, data=encode_bcd(self.password, 3))


@dataclass(frozen=True, slots=True, kw_only=True)
class RepeatReceipt(_PasswordOnly):
    """Repeat Receipt 06 20 (chapter 2.11): the terminal re-sends its last receipt.

    The terminal answers with the Status-Information of its last transaction,
    then the receipt lines and Completion — which is what recovery after a lost
    answer needs.
    """

    CONTROL: ClassVar[tuple[int, int]] = (0x06, 0x20)

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> RepeatReceipt:
        """Decode (used by the simulator)."""
        return cls(password=_decode_password(apdu))


@dataclass(frozen=True, slots=True, kw_only=True)
class EndOfDay(_PasswordOnly):
    """End-of-Day 06 50 (chapter 2.16): settle the stored turnover, report totals."""

    CONTROL: ClassVar[tuple[int, int]] = (0x06, 0x50)

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> EndOfDay:
        """Decode (used by the simulator)."""
        return cls(password=_decode_password(apdu))


def _decode_password(apdu: Apdu) -> int:
    if len(apdu.data) < 3:
        raise ZvtApduError("command without password")
    return decode_bcd(apdu.data[:3], what="password")


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusEnquiry:
    """Status Enquiry 05 01 (chapter 2.55): ``[<password> [03 <service-byte>]]``.

    The terminal answers with Completion carrying its software version and
    terminal status code.
    """

    CONTROL: ClassVar[tuple[int, int]] = (0x05, 0x01)
    password: int | None = field(default=None, repr=False)
    service_byte: int | None = None

    def __post_init__(self) -> None:
        _check_range("password", self.password, 0, PASSWORD_MAX)
        _check_range("service_byte", self.service_byte, 0, 0xFF)
        if self.service_byte is not None and self.password is None:
            raise ZvtUsageError("a service byte needs the password before it")

    def to_apdu(self) -> Apdu:
        """Encode."""
        data = b""
        if self.password is not None:
            data = encode_bcd(self.password, 3)
            if self.service_byte is not None:
                data += encode_bmp(BMP_SERVICE_BYTE, bytes((self.service_byte,)))
        return Apdu(cls=0x05, instr=0x01, data=data)

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> StatusEnquiry:
        """Decode (used by the simulator)."""
        if not apdu.data:
            return cls()
        password = _decode_password(apdu)
        fields = decode_bmps(apdu.data, 3)
        return cls(password=password, service_byte=fields.byte(BMP_SERVICE_BYTE))


@dataclass(frozen=True, slots=True, kw_only=True)
class AbortRequest:
    """Abort 06 B0 (chapter 2.4): the ECR asks the terminal to abort the running transaction."""

    CONTROL: ClassVar[tuple[int, int]] = (0x06, 0xB0)

    def to_apdu(self) -> Apdu:
        """Encode."""
        return Apdu(cls=0x06, instr=0xB0)

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> AbortRequest:
        """Decode (used by the simulator)."""
        return cls()


EcrCommand = (
    Registration
    | Authorization
    | Reversal
    | RepeatReceipt
    | EndOfDay
    | StatusEnquiry
    | AbortRequest
)


# ================================================================ PT → ECR


@dataclass(frozen=True, slots=True, kw_only=True)
class IntermediateStatus:
    """Intermediate Status-Information 04 FF (chapter 3.7): ``<status> [<timeout>] [06 TLV]``."""

    CONTROL: ClassVar[tuple[int, int]] = (0x04, 0xFF)
    code: int
    timeout_s: int | None = None
    tlv: tuple[TlvItem, ...] | None = None

    def __post_init__(self) -> None:
        _check_range("code", self.code, 0, 0xFF)
        _check_range("timeout_s", self.timeout_s, 0, 0xFF)
        if self.tlv is not None and self.timeout_s is None:
            raise ZvtUsageError("a TLV container needs the timeout byte before it")

    def message(self, lang: codes.Lang = "en") -> str:
        """What to show the customer."""
        return codes.intermediate_status_text(self.code, lang)

    def to_apdu(self) -> Apdu:
        """Encode (used by the simulator)."""
        data = bytes((self.code,))
        if self.timeout_s is not None:
            data += bytes((self.timeout_s,))
            if self.tlv is not None:
                data += encode_tlv_container(self.tlv)
        return Apdu(cls=0x04, instr=0xFF, data=data)

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> IntermediateStatus:
        """Decode."""
        data = apdu.data
        if not data:
            raise ZvtApduError("Intermediate status without status byte")
        timeout = data[1] if len(data) >= 2 else None
        tlv = _lenient(lambda: decode_bmps(data, 2).tlv) if len(data) > 2 else None
        return cls(code=data[0], timeout_s=timeout, tlv=tlv)


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemeTotal:
    """Count and total of one card scheme in the End-of-Day totals (BMP 60)."""

    scheme: str
    count: int
    total_minor: int

    def __post_init__(self) -> None:
        _check_range("count", self.count, 0, 0xFF)
        _check_range("total_minor", self.total_minor, 0, AMOUNT_MINOR_MAX)


TOTALS_SCHEMES: Final = ("girocard", "jcb", "eurocard", "amex", "visa", "diners", "others")
_TOTALS_GROUP_BYTES: Final = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class EndOfDayTotals:
    """Individual totals of End-of-Day (BMP 60, chapter 2.16).

    ``<receipt-no start (2 BCD)> <receipt-no end (2 BCD)>`` then per scheme
    ``<count (1 byte binary)> <total (6 BCD)>`` for girocard, JCB, Eurocard,
    Amex, VISA, Diners and others.
    """

    receipt_no_start: int
    receipt_no_end: int
    schemes: tuple[SchemeTotal, ...]

    def __post_init__(self) -> None:
        _check_range("receipt_no_start", self.receipt_no_start, 0, RECEIPT_NO_MAX)
        _check_range("receipt_no_end", self.receipt_no_end, 0, RECEIPT_NO_MAX)
        if len(self.schemes) > len(TOTALS_SCHEMES):
            raise ZvtUsageError("too many schemes in totals")

    @property
    def count(self) -> int:
        """Number of bookings over all schemes."""
        return sum(s.count for s in self.schemes)

    @property
    def total_minor(self) -> int:
        """Sum over all schemes."""
        return sum(s.total_minor for s in self.schemes)

    def encode(self) -> bytes:
        """Payload of BMP 60 (without its LLL prefix)."""
        out = encode_bcd(self.receipt_no_start, 2) + encode_bcd(self.receipt_no_end, 2)
        for s in self.schemes:
            out += bytes((s.count,)) + encode_bcd(s.total_minor, 6)
        return out

    @classmethod
    def decode(cls, payload: bytes) -> EndOfDayTotals:
        """Parse the payload of BMP 60 (strict: it is money)."""
        if len(payload) < 4 or (len(payload) - 4) % _TOTALS_GROUP_BYTES:
            raise ZvtApduError("End-of-Day totals have a wrong length")
        groups = (len(payload) - 4) // _TOTALS_GROUP_BYTES
        if groups > len(TOTALS_SCHEMES):
            raise ZvtApduError("End-of-Day totals have too many groups")
        schemes = []
        for i in range(groups):
            at = 4 + i * _TOTALS_GROUP_BYTES
            schemes.append(
                SchemeTotal(
                    scheme=TOTALS_SCHEMES[i],
                    count=payload[at],
                    total_minor=decode_bcd(payload[at + 1 : at + 7], what="scheme total"),
                )
            )
        return cls(
            receipt_no_start=decode_bcd(payload[0:2], what="receipt start"),
            receipt_no_end=decode_bcd(payload[2:4], what="receipt end"),
            schemes=tuple(schemes),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusInformation:
    """Status-Information 04 0F (chapter 3.6): the result of a transaction.

    ``masked_pan`` holds at most BIN + last 4 digits; a full number sent by the
    terminal was masked while parsing. ``approved_offline`` is derived from the
    online flag (TLV 1F11 = 0) or, without it, from payment type BMP 19 = 0x40,
    and is only ever true for an approved result.
    """

    CONTROL: ClassVar[tuple[int, int]] = (0x04, 0x0F)
    result_code: int
    amount_minor: int | None = None
    currency: str | None = None
    trace_no: int | None = None
    receipt_no: int | None = None
    turnover_no: int | None = None
    masked_pan: str | None = None
    card_type: int | None = None
    card_type_id: int | None = None
    card_name: str | None = None
    auth_code: str | None = None
    date_mmdd: str | None = None
    time_hhmmss: str | None = None
    terminal_id: str | None = None
    payment_type: int | None = None
    online_flag: int | None = None
    additional_text: str | None = None
    totals: EndOfDayTotals | None = None

    def __post_init__(self) -> None:
        _check_range("result_code", self.result_code, 0, 0xFF)
        _check_range("amount_minor", self.amount_minor, 0, AMOUNT_MINOR_MAX)
        _check_range("trace_no", self.trace_no, 0, TRACE_NO_MAX)
        _check_range("receipt_no", self.receipt_no, 0, RECEIPT_NO_MAX)
        _check_range("payment_type", self.payment_type, 0, 0xFF)
        for name, text in (
            ("masked_pan", self.masked_pan),
            ("additional_text", self.additional_text),
            ("card_name", self.card_name),
            ("auth_code", self.auth_code),
        ):
            if text is not None and FULL_PAN_RUN.search(text):
                raise ZvtUsageError(f"{name} looks like a full card number")

    @property
    def approved(self) -> bool:
        """Result code 00."""
        return self.result_code == codes.RESULT_OK

    @property
    def approved_offline(self) -> bool:
        """Approved by the terminal without asking the bank (see class docstring)."""
        if not self.approved:
            return False
        if self.online_flag is not None:
            return self.online_flag == 0
        if self.payment_type is not None:
            return self.payment_type & 0x70 == PAYMENT_TYPE_OFFLINE
        return False

    def message(self, lang: codes.Lang = "en") -> str:
        """Text of the result code."""
        return codes.result_text(self.result_code, lang)

    def to_apdu(self, *, pan_digits: str | None = None, text_encoding: str = "cp437") -> Apdu:
        """Encode (used by the simulator).

        ``pan_digits`` lets the simulator send a card number other than the
        masked one (a full test number, to prove the driver masks it).
        """
        out = encode_bmp(BMP_RESULT, bytes((self.result_code,)))
        if self.amount_minor is not None:
            out += encode_bmp(BMP_AMOUNT, encode_bcd(self.amount_minor, 6))
        if self.trace_no is not None:
            out += encode_bmp(BMP_TRACE, encode_bcd(self.trace_no, 3))
        if self.time_hhmmss is not None:
            out += encode_bmp(BMP_TIME, bytes.fromhex(self.time_hhmmss))
        if self.date_mmdd is not None:
            out += encode_bmp(BMP_DATE, bytes.fromhex(self.date_mmdd))
        pan = pan_digits if pan_digits is not None else self.masked_pan
        if pan is not None:
            out += encode_bmp(BMP_PAN, encode_pan(pan))
        if self.payment_type is not None:
            out += encode_bmp(BMP_PAYMENT_TYPE, bytes((self.payment_type,)))
        if self.terminal_id is not None:
            out += encode_bmp(BMP_TERMINAL_ID, bytes.fromhex(self.terminal_id.rjust(8, "0")))
        if self.auth_code is not None:
            out += encode_bmp(BMP_AUTH_ATTRIBUTE, self.auth_code.encode("ascii").ljust(8, b"\0"))
        if self.additional_text is not None:
            out += encode_bmp(BMP_ADDITIONAL_TEXT, self.additional_text.encode(text_encoding))
        if self.currency is not None:
            out += encode_bmp(BMP_CURRENCY, _currency_bytes(self.currency))
        if self.receipt_no is not None:
            out += encode_bmp(BMP_RECEIPT, encode_bcd(self.receipt_no, 2))
        if self.turnover_no is not None:
            out += encode_bmp(BMP_TURNOVER, encode_bcd(self.turnover_no, 3))
        if self.card_type is not None:
            out += encode_bmp(BMP_CARD_TYPE, bytes((self.card_type,)))
        if self.card_name is not None:
            out += encode_bmp(BMP_CARD_NAME, self.card_name.encode(text_encoding) + b"\0")
        if self.card_type_id is not None:
            out += encode_bmp(BMP_CARD_TYPE_ID, bytes((self.card_type_id,)))
        if self.totals is not None:
            out += encode_bmp(BMP_TOTALS, self.totals.encode())
        if self.online_flag is not None:
            out += encode_tlv_container(
                (TlvItem(tag=TLV_ONLINE_FLAG, value=bytes((self.online_flag,))),)
            )
        return Apdu(cls=0x04, instr=0x0F, data=out)

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> StatusInformation:
        """Decode, masking the card number on the way."""
        f = decode_bmps(apdu.data)
        result = f.byte(BMP_RESULT)
        if result is None:
            raise ZvtApduError("Status-Information without result code")
        cc = f.bcd(BMP_CURRENCY)
        totals_raw = f.values.get(BMP_TOTALS)
        online = None
        if f.tlv is not None:
            item = find_tlv(f.tlv, TLV_ONLINE_FLAG)
            if item is not None and len(item.value) == 1:
                online = item.value[0]
        auth = f.text(BMP_AUTH_ATTRIBUTE, "latin-1")
        try:
            return cls(
                result_code=result,
                amount_minor=f.bcd(BMP_AMOUNT),
                currency=currency_alpha(cc) if cc is not None else None,
                trace_no=f.bcd(BMP_TRACE),
                receipt_no=f.bcd(BMP_RECEIPT),
                turnover_no=_lenient(lambda: f.bcd(BMP_TURNOVER)),
                masked_pan=f.masked_pan,
                card_type=f.byte(BMP_CARD_TYPE),
                card_type_id=f.byte(BMP_CARD_TYPE_ID),
                card_name=f.text(BMP_CARD_NAME, text_encoding) or None,
                auth_code=auth or None,
                date_mmdd=_lenient(lambda: f.digits(BMP_DATE)),
                time_hhmmss=_lenient(lambda: f.digits(BMP_TIME)),
                terminal_id=_lenient(lambda: f.digits(BMP_TERMINAL_ID)),
                payment_type=f.byte(BMP_PAYMENT_TYPE),
                online_flag=online,
                additional_text=f.text(BMP_ADDITIONAL_TEXT, text_encoding) or None,
                totals=EndOfDayTotals.decode(totals_raw) if totals_raw is not None else None,
            )
        except ZvtUsageError as exc:
            raise ZvtApduError(f"Status-Information: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Completion:
    """Completion 06 0F (chapter 3.2): the terminal hands control back to the ECR.

    Two layouts: ``[27 <result>] [19 <status>] [29 <TID>] [49 <CC>] [06 TLV]``
    after most commands, and ``<sw-version (LLLVAR)> <terminal-status> [06 TLV]``
    after Status Enquiry. They are told apart by the first byte: an LLLVAR
    prefix is ``F0``..``F9``, which no BMP of the first layout uses.
    """

    CONTROL: ClassVar[tuple[int, int]] = (0x06, 0x0F)
    result_code: int | None = None
    status_byte: int | None = None
    terminal_id: str | None = None
    currency: str | None = None
    sw_version: str | None = None
    terminal_status: int | None = None
    tlv: tuple[TlvItem, ...] | None = None

    def __post_init__(self) -> None:
        _check_range("result_code", self.result_code, 0, 0xFF)
        _check_range("status_byte", self.status_byte, 0, 0xFF)
        _check_range("terminal_status", self.terminal_status, 0, 0xFF)
        if (self.sw_version is None) != (self.terminal_status is None):
            raise ZvtUsageError("sw_version and terminal_status come together")

    def to_apdu(self) -> Apdu:
        """Encode (used by the simulator)."""
        if self.sw_version is not None and self.terminal_status is not None:
            sw = self.sw_version.encode("ascii", errors="replace")
            data = encode_var_length(len(sw), 3) + sw + bytes((self.terminal_status,))
        else:
            data = b""
            if self.result_code is not None:
                data += encode_bmp(BMP_RESULT, bytes((self.result_code,)))
            if self.status_byte is not None:
                data += encode_bmp(BMP_PAYMENT_TYPE, bytes((self.status_byte,)))
            if self.terminal_id is not None:
                data += encode_bmp(BMP_TERMINAL_ID, bytes.fromhex(self.terminal_id.rjust(8, "0")))
            if self.currency is not None:
                data += encode_bmp(BMP_CURRENCY, _currency_bytes(self.currency))
        if self.tlv is not None:
            data += encode_tlv_container(self.tlv)
        return Apdu(cls=0x06, instr=0x0F, data=data)

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> Completion:
        """Decode."""
        data = apdu.data
        if data and 0xF0 <= data[0] <= 0xF9:
            length, pos = decode_var_length(data, 0, 3, what="software version")
            if pos + length + 1 > len(data):
                raise ZvtApduError("Completion: truncated software version / status")
            sw = data[pos : pos + length].decode("latin-1").replace("\x00", "").strip()
            status = data[pos + length]
            rest = _lenient(lambda: decode_bmps(data, pos + length + 1))
            return cls(
                sw_version=scrub_text(sw),
                terminal_status=status,
                tlv=rest.tlv if rest is not None else None,
            )
        f = decode_bmps(data)
        cc = f.bcd(BMP_CURRENCY)
        return cls(
            result_code=f.byte(BMP_RESULT),
            status_byte=f.byte(BMP_PAYMENT_TYPE),
            terminal_id=_lenient(lambda: f.digits(BMP_TERMINAL_ID)),
            currency=currency_alpha(cc) if cc is not None else None,
            tlv=f.tlv,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalAbort:
    """Abort 06 1E from the terminal (chapter 3.1): the transaction ended without success."""

    CONTROL: ClassVar[tuple[int, int]] = (0x06, 0x1E)
    result_code: int

    def __post_init__(self) -> None:
        _check_range("result_code", self.result_code, 0, 0xFF)

    def message(self, lang: codes.Lang = "en") -> str:
        """Text of the result code."""
        return codes.result_text(self.result_code, lang)

    def to_apdu(self) -> Apdu:
        """Encode (used by the simulator)."""
        return Apdu(cls=0x06, instr=0x1E, data=bytes((self.result_code,)))

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> TerminalAbort:
        """Decode; anything after the result code is optional and ignored."""
        if not apdu.data:
            # Some terminals send 06 1E 00 without a code; treat as a system error.
            return cls(result_code=codes.RESULT_SYSTEM_ERROR)
        return cls(result_code=apdu.data[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class PrintLine:
    """Print Line 06 D1 (chapter 3.4): ``<attribute> <text>``, one receipt line."""

    CONTROL: ClassVar[tuple[int, int]] = (0x06, 0xD1)
    attribute: int = 0
    text: str = ""

    def __post_init__(self) -> None:
        _check_range("attribute", self.attribute, 0, 0xFF)

    @property
    def last_line(self) -> bool:
        """Attribute bit 0x80 marks the last line of a receipt."""
        return bool(self.attribute & 0x80)

    def to_apdu(self, *, text_encoding: str = "cp437") -> Apdu:
        """Encode (used by the simulator)."""
        data = bytes((self.attribute,)) + self.text.encode(text_encoding, errors="replace")
        return Apdu(cls=0x06, instr=0xD1, data=data)

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> PrintLine:
        """Decode; the text is scrubbed of card numbers."""
        if not apdu.data:
            raise ZvtApduError("Print Line without attribute")
        text = apdu.data[1:].decode(text_encoding, errors="replace")
        return cls(attribute=apdu.data[0], text=scrub_text(text))


@dataclass(frozen=True, slots=True, kw_only=True)
class PrintTextBlock:
    """Print Text Block 06 D3 (chapter 3.5): TLV tag 25 with text lines (tag 07)."""

    CONTROL: ClassVar[tuple[int, int]] = (0x06, 0xD3)
    lines: tuple[str, ...] = ()
    receipt_type: int | None = None

    def __post_init__(self) -> None:
        _check_range("receipt_type", self.receipt_type, 0, 0xFF)

    def to_apdu(self, *, text_encoding: str = "cp437") -> Apdu:
        """Encode (used by the simulator)."""
        texts = tuple(
            TlvItem(tag=TLV_TEXT_LINES, value=line.encode(text_encoding, errors="replace"))
            for line in self.lines
        )
        items: list[TlvItem] = [TlvItem(tag=TLV_PRINT_TEXTS, children=texts)]
        if self.receipt_type is not None:
            items.append(TlvItem(tag=TLV_RECEIPT_TYPE, value=bytes((self.receipt_type,))))
        return Apdu(cls=0x06, instr=0xD3, data=encode_tlv_container(items))

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, text_encoding: str = "cp437") -> PrintTextBlock:
        """Decode; lines are scrubbed of card numbers."""
        f = decode_bmps(apdu.data)
        items = f.tlv or ()
        lines = tuple(
            scrub_text(item.value.decode(text_encoding, errors="replace"))
            for item in find_all_tlv(items, TLV_TEXT_LINES)
        )
        rtype = find_tlv(items, TLV_RECEIPT_TYPE)
        return cls(
            lines=lines,
            receipt_type=rtype.value[0] if rtype is not None and rtype.value else None,
        )


PtMessage = (
    Ack
    | Nack
    | IntermediateStatus
    | StatusInformation
    | Completion
    | TerminalAbort
    | PrintLine
    | PrintTextBlock
)

_PtDecoder = Callable[[Apdu, str], PtMessage]
_EcrDecoder = Callable[[Apdu, str], EcrCommand]

_PT_TYPES: Final[dict[tuple[int, int], tuple[str, _PtDecoder]]] = {
    IntermediateStatus.CONTROL: (
        "IntermediateStatus",
        lambda a, e: IntermediateStatus.from_apdu(a, text_encoding=e),
    ),
    StatusInformation.CONTROL: (
        "StatusInformation",
        lambda a, e: StatusInformation.from_apdu(a, text_encoding=e),
    ),
    Completion.CONTROL: ("Completion", lambda a, e: Completion.from_apdu(a, text_encoding=e)),
    TerminalAbort.CONTROL: (
        "TerminalAbort",
        lambda a, e: TerminalAbort.from_apdu(a, text_encoding=e),
    ),
    PrintLine.CONTROL: ("PrintLine", lambda a, e: PrintLine.from_apdu(a, text_encoding=e)),
    PrintTextBlock.CONTROL: (
        "PrintTextBlock",
        lambda a, e: PrintTextBlock.from_apdu(a, text_encoding=e),
    ),
}

_ECR_TYPES: Final[dict[tuple[int, int], tuple[str, _EcrDecoder]]] = {
    Registration.CONTROL: ("Registration", lambda a, e: Registration.from_apdu(a)),
    Authorization.CONTROL: ("Authorization", lambda a, e: Authorization.from_apdu(a)),
    Reversal.CONTROL: ("Reversal", lambda a, e: Reversal.from_apdu(a)),
    RepeatReceipt.CONTROL: ("RepeatReceipt", lambda a, e: RepeatReceipt.from_apdu(a)),
    EndOfDay.CONTROL: ("EndOfDay", lambda a, e: EndOfDay.from_apdu(a)),
    StatusEnquiry.CONTROL: ("StatusEnquiry", lambda a, e: StatusEnquiry.from_apdu(a)),
    AbortRequest.CONTROL: ("AbortRequest", lambda a, e: AbortRequest.from_apdu(a)),
}


def _decode_ack(apdu: Apdu) -> Ack | Nack | None:
    if apdu.cls == 0x80:
        return Ack()
    if apdu.cls == 0x84:
        # 84 00 is also a positive acknowledgement (chapter 1.3).
        return Ack() if apdu.instr == 0x00 else Nack(error_code=apdu.instr)
    return None


def decode_pt_message(apdu: Apdu, *, text_encoding: str = "cp437") -> PtMessage:
    """Decode an APDU the terminal sent; unknown commands are a :class:`ZvtProtocolError`."""
    ack = _decode_ack(apdu)
    if ack is not None:
        return ack
    entry = _PT_TYPES.get((apdu.cls, apdu.instr))
    if entry is None:
        raise ZvtProtocolError(f"unknown command {apdu.cls:02X} {apdu.instr:02X} from terminal")
    name, decoder = entry
    try:
        return decoder(apdu, text_encoding)
    except ZvtApduError:
        raise
    except ZvtError as exc:
        raise ZvtApduError(f"{name}: {exc}") from None


def decode_ecr_command(apdu: Apdu, *, text_encoding: str = "cp437") -> EcrCommand | Ack | Nack:
    """Decode an APDU the ECR sent (the simulator's side)."""
    ack = _decode_ack(apdu)
    if ack is not None:
        return ack
    entry = _ECR_TYPES.get((apdu.cls, apdu.instr))
    if entry is None:
        raise ZvtProtocolError(f"unknown command {apdu.cls:02X} {apdu.instr:02X} from ECR")
    name, decoder = entry
    try:
        return decoder(apdu, text_encoding)
    except ZvtApduError:
        raise
    except ZvtError as exc:
        raise ZvtApduError(f"{name}: {exc}") from None


__all__ = [
    "AMOUNT_MINOR_MAX",
    "DEFAULT_CONFIG_BYTE",
    "AbortRequest",
    "Ack",
    "Authorization",
    "Completion",
    "EcrCommand",
    "EndOfDay",
    "EndOfDayTotals",
    "IntermediateStatus",
    "Nack",
    "PrintLine",
    "PrintTextBlock",
    "PtMessage",
    "Registration",
    "RepeatReceipt",
    "Reversal",
    "SchemeTotal",
    "StatusEnquiry",
    "StatusInformation",
    "TerminalAbort",
    "decode_ecr_command",
    "decode_pt_message",
]
