"""Error base of :mod:`drivers.identification`.

Every error carries a ``reason`` code and the message a resident sees, in
Russian and English; neither ever contains what was typed or scanned.
"""

from __future__ import annotations

__all__ = ["IdentificationError"]


class IdentificationError(Exception):
    """Base of every error raised on purpose by :mod:`drivers.identification`."""

    def __init__(self, reason: str, message_ru: str, message_en: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message_ru = message_ru
        self.message_en = message_en

    def message(self, lang: str) -> str:
        """The user-facing message in ``lang`` (``"ru"``; anything else is English)."""
        return self.message_ru if lang == "ru" else self.message_en
