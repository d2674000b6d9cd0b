"""Answer-to-Reset parsing (ISO/IEC 7816-3:2006 §8.2) and the PC/SC contactless ATR.

Theory of operation: :func:`parse_atr` walks TS, T0, the chain of interface
bytes TAi/TBi/TCi/TDi, the K historical bytes and TCK, bounds-checking each
step, and says whether the card is *contactless*. A PC/SC reader builds a
synthetic ATR for a contactless card (PC/SC part 3 §3.1.3.2.3):

    3B 8n 80 01 <n historical bytes> TCK

i.e. TS = 3B, T0 = 8n (only TD1 follows, n historical bytes), TD1 = 80 (only
TD2 follows, T=0), TD2 = 01 (nothing follows, T=1). For *storage* cards
(MIFARE Classic, Ultralight, ...) the historical bytes are
``80 4F 0C A0 00 00 03 06 SS NN NN 00 00 00 00``: category indicator 80, an
application identifier object (tag 4F, length 0C) holding the PC/SC RID
``A0 00 00 03 06``, the standard byte SS, the card name NN NN and four RFU
bytes (PC/SC part 3 supplement). ISO 14443-4 smart cards keep the ATS
historical bytes instead; they are contactless too, just not storage cards.

Anything that does not parse as an ISO 7816-3 ATR is a card we do not know:
:class:`CardNotRecognised`.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.pcsc.errors import CardNotRecognised

__all__ = ["ATR_BYTES_MAX", "PCSC_RID", "AtrInfo", "parse_atr"]

ATR_BYTES_MAX = 33
"""TS plus at most 32 bytes (ISO 7816-3 §8.2.1); pcsc-lite's MAX_ATR_SIZE too."""

PCSC_RID = bytes.fromhex("A000000306")
"""The PC/SC Workgroup's registered application provider identifier."""

_INTERFACE_BYTE_ROUNDS_MAX = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class AtrInfo:
    """What an ATR says about the card (ISO 7816-3 §8.2, PC/SC part 3 §3.1.3.2.3)."""

    raw: bytes
    historical: bytes
    protocols: frozenset[int]
    """Protocols T=x indicated in TD bytes; T=0 when no TD1 (ISO 7816-3 §8.2.3)."""
    tck_valid: bool | None
    """XOR check of T0..TCK, or ``None`` when no TCK is present (T=0 only)."""
    contactless: bool
    """The PC/SC part 3 contactless shape ``3B 8n 80 01 ...``."""
    storage_standard: int | None = None
    """SS byte of a PC/SC contactless storage card (e.g. 03 = ISO 14443 A part 3)."""
    storage_card_name: int | None = None
    """NN NN of a PC/SC contactless storage card (e.g. 0001 = MIFARE Classic 1K)."""

    def __post_init__(self) -> None:
        assert 2 <= len(self.raw) <= ATR_BYTES_MAX
        assert (self.storage_standard is None) == (self.storage_card_name is None)
        assert self.contactless or self.storage_standard is None


def parse_atr(atr: bytes) -> AtrInfo:
    """Parse an ATR (ISO/IEC 7816-3:2006 §8.2); :class:`CardNotRecognised` if malformed."""
    if not 2 <= len(atr) <= ATR_BYTES_MAX:
        raise CardNotRecognised(f"ATR of {len(atr)} bytes is outside 2..{ATR_BYTES_MAX}")
    ts = atr[0]
    if ts not in (0x3B, 0x3F):
        raise CardNotRecognised(f"ATR initial character {ts:02X} is neither 3B nor 3F")
    t0 = atr[1]
    historical_count = t0 & 0x0F
    pos = 2
    y = t0 >> 4
    protocols: set[int] = set()
    td_bytes: list[int] = []
    for _round in range(_INTERFACE_BYTE_ROUNDS_MAX):
        # Bits b5..b8 of T0/TDi say which of TA, TB, TC, TD follow, in that order.
        present = bin(y).count("1")
        if pos + present > len(atr):
            raise CardNotRecognised("ATR ends inside its interface bytes")
        if not y & 0x8:
            pos += present
            break
        pos += present - 1
        td = atr[pos]
        pos += 1
        td_bytes.append(td)
        protocols.add(td & 0x0F)
        y = td >> 4
    else:
        raise CardNotRecognised("ATR has too many rounds of interface bytes")
    if not protocols:
        protocols.add(0)
    has_tck = any(p != 0 for p in protocols)
    expected = pos + historical_count + (1 if has_tck else 0)
    if len(atr) != expected:
        raise CardNotRecognised(f"ATR is {len(atr)} bytes, its format bytes say {expected}")
    historical = bytes(atr[pos : pos + historical_count])
    tck_valid: bool | None = None
    if has_tck:
        check = 0
        for byte in atr[1:]:
            check ^= byte
        tck_valid = check == 0
    contactless = ts == 0x3B and (t0 >> 4) == 0x8 and td_bytes[:2] == [0x80, 0x01]
    contactless = contactless and len(td_bytes) == 2
    standard: int | None = None
    name: int | None = None
    if (
        contactless
        and len(historical) >= 15
        and historical[:3] == bytes((0x80, 0x4F, 0x0C))
        and historical[3:8] == PCSC_RID
    ):
        standard = historical[8]
        name = int.from_bytes(historical[9:11], "big")
    return AtrInfo(
        raw=bytes(atr),
        historical=historical,
        protocols=frozenset(protocols),
        tck_valid=tck_valid,
        contactless=contactless,
        storage_standard=standard,
        storage_card_name=name,
    )
