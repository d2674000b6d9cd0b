"""Card hashes for magstripe resident cards.

A resident card is stored and looked up only as a keyed hash (DESIGN.md, card
data). Smart cards use :func:`drivers.pcsc.identity.card_hash`; magstripe
cards use :func:`track2_card_hash`, built the same way -- HMAC-SHA256
(RFC 2104) under the same per-deployment key, over fields joined by the ASCII
unit separator (1F) -- with its own kind, so a track 2 and a chip can never
produce the same input::

    lobbypay-card-v1 US track2 US <deployment id> US <card serial or ""> US <account>

The issuing system computes the same string when it enrols a card in the
catalog.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from drivers.scanner.track2 import ResidentTrack2

__all__ = ["CARD_HASH_KEY_BYTES_MIN", "canonical_track2", "track2_card_hash"]

CARD_HASH_VERSION: Final = "lobbypay-card-v1"
CARD_HASH_KEY_BYTES_MIN: Final = 16
_UNIT_SEPARATOR: Final = "\x1f"


def canonical_track2(card: ResidentTrack2) -> str:
    """The string :func:`track2_card_hash` authenticates (fixed forever for v1)."""
    return _UNIT_SEPARATOR.join(
        [CARD_HASH_VERSION, "track2", card.deployment_id, card.card_serial or "", card.account]
    )


def track2_card_hash(card: ResidentTrack2, key: bytes) -> str:
    """64 lower-case hex digits: HMAC-SHA256 under the deployment's card hash key."""
    if len(key) < CARD_HASH_KEY_BYTES_MIN:
        raise ValueError(f"the card hash key must be at least {CARD_HASH_KEY_BYTES_MIN} bytes")
    return hmac.new(key, canonical_track2(card).encode("ascii"), hashlib.sha256).hexdigest()
