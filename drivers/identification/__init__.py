"""Resident identification: one interface over keypad, card readers, scanners and bill QRs.

* :mod:`drivers.identification.events` -- :class:`AccountIdentified`,
  :class:`IdentificationFailed` and the account references.
* :mod:`drivers.identification.hub` -- :class:`IdentificationHub`, the merged stream.
* :mod:`drivers.identification.virtual_number` -- format and check digits of
  typed account numbers.
* :mod:`drivers.identification.card_hash` -- keyed hashes of magstripe cards.
"""

from typing import TYPE_CHECKING

from drivers._lazy import lazy_exports

if TYPE_CHECKING:
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

# Names are imported on first use (PEP 562), so that importing this package —
# which `lobbypay --help` does for every command — stays cheap.
_LAZY: dict[str, tuple[str, str]] = {
    "track2_card_hash": ("drivers.identification.card_hash", "track2_card_hash"),
    "IdentificationError": ("drivers.identification.errors", "IdentificationError"),
    "AccountIdentified": ("drivers.identification.events", "AccountIdentified"),
    "AccountReference": ("drivers.identification.events", "AccountReference"),
    "CardHashRef": ("drivers.identification.events", "CardHashRef"),
    "IdentificationEvent": ("drivers.identification.events", "IdentificationEvent"),
    "IdentificationFailed": ("drivers.identification.events", "IdentificationFailed"),
    "IdentificationSource": ("drivers.identification.events", "IdentificationSource"),
    "QrRef": ("drivers.identification.events", "QrRef"),
    "VirtualNumberRef": ("drivers.identification.events", "VirtualNumberRef"),
    "CardEventSource": ("drivers.identification.hub", "CardEventSource"),
    "IdentificationHub": ("drivers.identification.hub", "IdentificationHub"),
    "ScanEventSource": ("drivers.identification.hub", "ScanEventSource"),
    "pcsc_card_hasher": ("drivers.identification.hub", "pcsc_card_hasher"),
    "CheckDigitScheme": ("drivers.identification.virtual_number", "CheckDigitScheme"),
    "VirtualNumberError": ("drivers.identification.virtual_number", "VirtualNumberError"),
    "VirtualNumberPolicy": ("drivers.identification.virtual_number", "VirtualNumberPolicy"),
    "check_digit": ("drivers.identification.virtual_number", "check_digit"),
    "check_digit_valid": ("drivers.identification.virtual_number", "check_digit_valid"),
    "normalize_virtual_number": (
        "drivers.identification.virtual_number",
        "normalize_virtual_number",
    ),
    "with_check_digit": ("drivers.identification.virtual_number", "with_check_digit"),
}


__getattr__ = lazy_exports(globals(), _LAZY)


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
