"""A virtual card's connection to the vsmartcard vpcd reader driver.

The vpcd wire protocol (vsmartcard ``vpcd.c``; Debian's vicc speaks it too):
every message in both directions is a 2-byte big-endian length and a payload.
vpcd sends a one-byte payload for control -- 0 power off, 1 power on, 2 reset,
4 "send your ATR" -- and anything longer is a command APDU, answered by the
card with the R-APDU. vpcd listens on one TCP port per slot; a card connecting
is "inserted", a card closing its socket is "removed".
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

from tests.drivers.vcard.cards import DISCONNECT, VirtualCard

CTRL_OFF = 0
CTRL_ON = 1
CTRL_RESET = 2
CTRL_ATR = 4

RECV_POLL_S = 0.2
MESSAGE_BYTES_MAX = 0xFFFF


class VpcdCard:
    """Runs one :class:`VirtualCard` against vpcd in a thread.

    ``insert()`` connects (the card appears in the reader), ``remove()`` closes
    the connection. With ``reconnect=True`` the card behaves like a card left in
    a reader that is unplugged and plugged back: when vpcd goes away (pcscd
    stopped) it keeps trying to connect until removed.
    """

    def __init__(
        self,
        card: VirtualCard,
        port: int,
        *,
        host: str = "127.0.0.1",
        reconnect: bool = False,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.card = card
        self.port = port
        self.host = host
        self.reconnect = reconnect
        self.connect_timeout_s = connect_timeout_s
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connections = 0
        self.peer_closed = threading.Event()
        self.dropped_mid_command = threading.Event()

    # --- control -----------------------------------------------------------

    def insert(self) -> VpcdCard:
        """Connect to vpcd (the card enters the field) and start answering."""
        assert self._thread is None, "card already inserted"
        self._sock = self._connect(self.connect_timeout_s)
        self._thread = threading.Thread(target=self._run, name="vpcd-card", daemon=True)
        self._thread.start()
        return self

    def remove(self, join_timeout_s: float = 3.0) -> None:
        """Close the connection (the card leaves the field) and stop the thread."""
        self._stop.set()
        self._close_socket()
        if self._thread is not None:
            self._thread.join(join_timeout_s)
            assert not self._thread.is_alive(), "virtual card thread did not stop"
            self._thread = None

    @property
    def inserted(self) -> bool:
        return self._thread is not None and not self._stop.is_set()

    # --- internals ---------------------------------------------------------

    def _connect(self, timeout_s: float) -> socket.socket:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
            except OSError:
                if time.monotonic() >= deadline or self._stop.is_set():
                    raise
                time.sleep(0.05)
                continue
            sock.settimeout(RECV_POLL_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections += 1
            return sock

    def _close_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _recv_exact(self, sock: socket.socket, size: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < size:
            if self._stop.is_set():
                return None
            try:
                chunk = sock.recv(size - len(buf))
            except TimeoutError:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
            # vpcd writes the length and the payload separately; with Nagle on
            # its side and delayed ACKs on ours every APDU would wait ~40 ms.
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return bytes(buf)

    def _send(self, sock: socket.socket, payload: bytes) -> None:
        sock.sendall(struct.pack("!H", len(payload)) + payload)

    def _run(self) -> None:
        while not self._stop.is_set():
            sock = self._sock
            if sock is None or not self._serve(sock):
                return
            # vpcd closed the connection (pcscd stopped): a card left in the reader.
            self.peer_closed.set()
            self._close_socket()
            if not self.reconnect:
                return
            try:
                self._sock = self._connect(timeout_s=30.0)
            except OSError:
                return

    def _serve(self, sock: socket.socket) -> bool:
        """Answer vpcd until it disconnects (True) or we stop (False)."""
        while not self._stop.is_set():
            header = self._recv_exact(sock, 2)
            if header is None:
                return not self._stop.is_set()
            (size,) = struct.unpack("!H", header)
            payload = self._recv_exact(sock, size) if size else b""
            if payload is None:
                return not self._stop.is_set()
            try:
                if size == 1:
                    self._control(sock, payload[0])
                    continue
                answer = self.card.handle(payload)
                if answer is DISCONNECT:
                    self.dropped_mid_command.set()
                    self._stop.set()
                    self._close_socket()
                    return False
                assert isinstance(answer, bytes)
                self._send(sock, answer)
            except OSError:
                return not self._stop.is_set()
        return False

    def _control(self, sock: socket.socket, code: int) -> None:
        if code == CTRL_ATR:
            self._send(sock, self.card.atr)
        elif code == CTRL_ON:
            self.card.power("on")
        elif code == CTRL_OFF:
            self.card.power("off")
        elif code == CTRL_RESET:
            self.card.power("reset")
