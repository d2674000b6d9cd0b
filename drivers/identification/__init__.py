"""Resident identification: one interface over keypad, card readers, scanners and bill QRs.

* :mod:`drivers.identification.events` -- :class:`AccountIdentified`,
  :class:`IdentificationFailed` and the account references.
* :mod:`drivers.identification.hub` -- :class:`IdentificationHub`, the merged stream.
* :mod:`drivers.identification.virtual_number` -- format and check digits of
  typed account numbers.
* :mod:`drivers.identification.card_hash` -- keyed hashes of magstripe cards.
"""

from drivers.identification.card_hash import track2_card_hash
from drivers.identification.errors import IdentificationError
from drivers.identification.events import (
    AccountIdentified,
    AccountReference,
    CardHashRef,
    IdentificationEvent,
    IdentificationFailed,
    IdentificationSource,
    QrRef,
    VirtualNumberRef,
)
from drivers.identification.hub import (
    CardEventSource,
    IdentificationHub,
    ScanEventSource,
    pcsc_card_hasher,
)
from drivers.identification.virtual_number import (
    CheckDigitScheme,
    VirtualNumberError,
    VirtualNumberPolicy,
    check_digit,
    check_digit_valid,
    normalize_virtual_number,
    with_check_digit,
)

__all__ = [
    "AccountIdentified",
    "AccountReference",
    "CardEventSource",
    "CardHashRef",
    "CheckDigitScheme",
    "IdentificationError",
    "IdentificationEvent",
    "IdentificationFailed",
    "IdentificationHub",
    "IdentificationSource",
    "QrRef",
    "ScanEventSource",
    "VirtualNumberError",
    "VirtualNumberPolicy",
    "VirtualNumberRef",
    "check_digit",
    "check_digit_valid",
    "normalize_virtual_number",
    "pcsc_card_hasher",
    "track2_card_hash",
    "with_check_digit",
]
