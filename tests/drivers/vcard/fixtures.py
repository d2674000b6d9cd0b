"""Pytest fixtures for the real PC/SC stack: a private pcscd, vpcd, virtual cards.

``tests/drivers/conftest.py`` re-exports :func:`pcscd_session`, :func:`pcscd`
and :func:`vcards`. Tests that use them skip when pcscd or vpcd is missing --
except under ``CI=true``, where a missing stack is a failure, not a skip.

Importing this module points libpcsclite at the private pcscd of this process
(``PCSCLITE_CSOCK_NAME``); it must happen before the first PC/SC call in the
process, because libpcsclite caches the socket path (see ``pcscd.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.drivers.vcard.cards import VirtualCard
from tests.drivers.vcard.pcscd import PcscDaemon, socket_path_for_process, unavailable_reason
from tests.drivers.vcard.vpcd import VpcdCard

os.environ["PCSCLITE_CSOCK_NAME"] = str(socket_path_for_process())

STATE_PRESENT = 0x20
STATE_CHANGED = 0x02


def require_pcsc_stack() -> None:
    """Skip (or, under ``CI=true``, fail) when the real PC/SC stack cannot run."""
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PC/SC stack required under CI=true: {reason}")
    pytest.skip(reason)


def wait_for_card_state(reader: str, *, present: bool, timeout_s: float = 5.0) -> None:
    """Block until pcscd reports ``reader`` with (or without) a card."""
    from smartcard import scard

    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hr == 0, scard.SCardGetErrorMessage(hr)
    try:
        deadline = time.monotonic() + timeout_s
        state = 0
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            hr, states = scard.SCardGetStatusChange(ctx, max(remaining_ms, 0), [(reader, state)])
            if hr == 0:
                state = states[0][1] & ~STATE_CHANGED
                if bool(state & STATE_PRESENT) == present:
                    return
            if remaining_ms <= 0:
                raise AssertionError(f"{reader!r} never became {'present' if present else 'empty'}")
    finally:
        scard.SCardReleaseContext(ctx)


class VirtualCards:
    """Insert virtual cards into the vpcd slots; removes all of them at teardown."""

    def __init__(self, daemon: PcscDaemon) -> None:
        self.daemon = daemon
        self._cards: list[VpcdCard] = []

    def reader(self, slot: int = 0) -> str:
        return self.daemon.reader_names[slot]

    def insert(
        self,
        card: VirtualCard,
        slot: int = 0,
        *,
        reconnect: bool = False,
        wait_present: bool = True,
    ) -> VpcdCard:
        """Put ``card`` into ``slot`` (0 or 1); by default wait until pcscd sees it."""
        connection = VpcdCard(card, self.daemon.port_for_slot(slot), reconnect=reconnect)
        connection.insert()
        self._cards.append(connection)
        if wait_present:
            wait_for_card_state(self.reader(slot), present=True)
        return connection

    def remove(self, connection: VpcdCard, *, wait_empty: bool = True) -> None:
        """Take the card out; by default wait until pcscd sees the slot empty."""
        connection.remove()
        if wait_empty and self.daemon.running:
            slot = connection.port - self.daemon.port
            wait_for_card_state(self.reader(slot), present=False)

    def close(self) -> None:
        for connection in self._cards:
            connection.remove()
        self._cards.clear()
        if self.daemon.running:
            # The next test must start from empty readers, not from a removal
            # pcscd has not noticed yet.
            for name in self.daemon.reader_names:
                wait_for_card_state(name, present=False)


@pytest.fixture(scope="session")
def pcscd_session() -> Iterator[PcscDaemon]:
    """One private pcscd (with vpcd) for the test session; stopped and cleaned at the end."""
    require_pcsc_stack()
    socket_path = socket_path_for_process()
    daemon = PcscDaemon(socket_path.parent, socket_path=socket_path)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.cleanup()


@pytest.fixture
def pcscd(pcscd_session: PcscDaemon) -> PcscDaemon:
    """The session's pcscd, started again if an earlier test stopped it."""
    if not pcscd_session.running:
        pcscd_session.start()
    return pcscd_session


@pytest.fixture
def vcards(pcscd: PcscDaemon) -> Iterator[VirtualCards]:
    """A :class:`VirtualCards` for this test; every card is removed at teardown."""
    cards = VirtualCards(pcscd)
    try:
        yield cards
    finally:
        cards.close()
