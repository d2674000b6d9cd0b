"""The ZVT link layer, sans-I/O: serial (framed, acknowledged) or TCP/IP (raw APDUs).

Theory of operation (ZVT transport protocol PA00P016):

* **Serial.** Stop-and-wait. A sender writes one frame and waits for the
  receiver's ``ACK`` (06). On ``NAK`` (15) or when no answer comes within the
  ACK timeout it sends the same frame again, at most ``retries_max`` (3) more
  times, then gives up with a typed error. A receiver answers every complete
  frame at once: ``ACK`` for a good CRC, ``NAK`` for a corrupt one (bad CRC,
  bad escape, oversize, or truncated when the line goes quiet mid-frame).
  Further APDUs queue behind the frame in flight (``outgoing_frames_max``).
* **TCP/IP.** APDUs go as they are; TCP does the rest. No ACK/NAK.

Both links share one interface (:class:`Link`): ``send_apdu`` queues bytes,
``receive_data`` feeds bytes in, ``next_apdu`` returns the next decoded
:class:`Apdu` or ``NEED_DATA``, ``data_to_send`` hands over what must be
written now, and ``ack_timeout`` / ``receive_timeout`` are called by the I/O
layer when its timers run out (the core never reads a clock).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Final, Protocol

from drivers.zvt.apdu import NEED_DATA, Apdu, ApduStream, _NeedData, decode_apdu
from drivers.zvt.errors import ZvtFrameError, ZvtTimeout, ZvtUsageError
from drivers.zvt.framing import (
    ACK,
    FRAME_BYTES_MAX_DEFAULT,
    NAK,
    AckReceived,
    FrameDecoder,
    FrameReceived,
    FrameRejected,
    NakReceived,
    encode_frame,
)

logger = logging.getLogger(__name__)

RETRIES_MAX_DEFAULT: Final = 3
OUTGOING_FRAMES_MAX: Final = 16


class Link(Protocol):
    """What the session layer needs from a link."""

    frames_sent: int

    @property
    def awaiting_ack(self) -> bool: ...

    @property
    def receiving(self) -> bool: ...

    def send_apdu(self, apdu: bytes) -> None: ...

    def receive_data(self, data: bytes) -> None: ...

    def next_apdu(self) -> Apdu | _NeedData: ...

    def data_to_send(self) -> bytes: ...

    def ack_timeout(self) -> None: ...

    def receive_timeout(self) -> None: ...

    def reset(self) -> None: ...


class SerialLink:
    """Serial link: DLE/STX frames, CRC, ACK/NAK, retransmission (sans-I/O)."""

    def __init__(
        self,
        *,
        frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT,
        retries_max: int = RETRIES_MAX_DEFAULT,
        outgoing_frames_max: int = OUTGOING_FRAMES_MAX,
    ) -> None:
        if retries_max < 0:
            raise ZvtUsageError("retries_max must be >= 0")
        self.retries_max = retries_max
        self.outgoing_frames_max = outgoing_frames_max
        self.frames_sent = 0
        self.frames_rejected = 0
        self._decoder = FrameDecoder(frame_bytes_max=frame_bytes_max)
        self._out = bytearray()
        self._queue: deque[bytes] = deque()
        self._inflight: bytes | None = None
        self._attempts = 0

    @property
    def awaiting_ack(self) -> bool:
        """True while a frame we sent waits for the peer's ACK."""
        return self._inflight is not None

    @property
    def inflight_attempts(self) -> int:
        """How many times the frame in flight has been written (0 if none)."""
        return self._attempts if self._inflight is not None else 0

    @property
    def receiving(self) -> bool:
        """True while a frame from the peer is half received."""
        return self._decoder.in_frame

    @property
    def garbage_bytes(self) -> int:
        """Bytes dropped outside frames since the link was made."""
        return self._decoder.garbage_bytes

    def send_apdu(self, apdu: bytes) -> None:
        """Queue an encoded APDU; it is framed and written when the line is free."""
        if len(self._queue) >= self.outgoing_frames_max:
            raise ZvtUsageError("too many frames queued on the serial link")
        self._queue.append(apdu)
        self._pump()

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the line."""
        self._decoder.receive_data(data)

    def next_apdu(self) -> Apdu | _NeedData:
        """Process buffered bytes; return the next good APDU or NEED_DATA.

        Raises :class:`ZvtFrameError` when the peer NAKed our frame more often
        than ``retries_max`` allows, and :class:`ZvtApduError` when a frame with
        a good CRC holds an APDU whose length field is wrong.
        """
        while True:
            event = self._decoder.next_event()
            if isinstance(event, _NeedData):
                return NEED_DATA
            if isinstance(event, FrameReceived):
                self._out.append(ACK)
                return decode_apdu(event.apdu)
            if isinstance(event, FrameRejected):
                self.frames_rejected += 1
                self._out.append(NAK)
                logger.warning("zvt_frame_rejected reason=%s", event.reason.value)
                continue
            if isinstance(event, AckReceived):
                if self._inflight is None:
                    logger.info("zvt_stray_ack")
                    continue
                self._inflight = None
                self._attempts = 0
                self._pump()
                continue
            if isinstance(event, NakReceived):
                if self._inflight is None:
                    logger.info("zvt_stray_nak")
                    continue
                self._retransmit(reason="nak")

    def data_to_send(self) -> bytes:
        """Bytes to write now (ACK/NAK replies, a new frame, a retransmission)."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def ack_timeout(self) -> None:
        """No ACK came in time: retransmit, or give up with :class:`ZvtTimeout`."""
        if self._inflight is None:
            return
        self._retransmit(reason="ack_timeout")

    def receive_timeout(self) -> None:
        """The line went quiet mid-frame: the frame is truncated, answer NAK."""
        rejected = self._decoder.flush()
        if rejected is not None:
            self.frames_rejected += 1
            self._out.append(NAK)
            logger.warning("zvt_frame_rejected reason=%s", rejected.reason.value)

    def reset(self) -> None:
        """Drop all state (after a reconnect)."""
        self._decoder.reset()
        self._out.clear()
        self._queue.clear()
        self._inflight = None
        self._attempts = 0

    def _pump(self) -> None:
        if self._inflight is None and self._queue:
            self._inflight = encode_frame(self._queue.popleft())
            self._attempts = 1
            self._out += self._inflight
            self.frames_sent += 1

    def _retransmit(self, *, reason: str) -> None:
        assert self._inflight is not None
        if self._attempts > self.retries_max:
            attempts = self._attempts
            self._inflight = None
            self._attempts = 0
            self._queue.clear()
            logger.warning("zvt_frame_give_up reason=%s attempts=%d", reason, attempts)
            if reason == "nak":
                raise ZvtFrameError(f"peer rejected our frame {attempts} times")
            raise ZvtTimeout(f"no ACK after {attempts} transmissions", stage="link_ack")
        self._attempts += 1
        self._out += self._inflight
        self.frames_sent += 1
        logger.info("zvt_frame_retransmit reason=%s attempt=%d", reason, self._attempts)


class TcpLink:
    """TCP/IP link: APDUs without framing (ZVT TCP/IP transport, port 20007)."""

    def __init__(self, *, apdu_bytes_max: int = FRAME_BYTES_MAX_DEFAULT) -> None:
        self.frames_sent = 0
        self._stream = ApduStream(apdu_bytes_max=apdu_bytes_max)
        self._out = bytearray()

    @property
    def awaiting_ack(self) -> bool:
        """Never: TCP acknowledges for us."""
        return False

    @property
    def receiving(self) -> bool:
        """True while part of an APDU is buffered."""
        return self._stream.buffered_bytes > 0

    def send_apdu(self, apdu: bytes) -> None:
        """Queue an encoded APDU for writing."""
        self._out += apdu
        self.frames_sent += 1

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the socket."""
        self._stream.receive_data(data)

    def next_apdu(self) -> Apdu | _NeedData:
        """The next APDU or NEED_DATA; an oversize APDU is a :class:`ZvtFrameError`."""
        return self._stream.next_apdu()

    def data_to_send(self) -> bytes:
        """Bytes to write now."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def ack_timeout(self) -> None:
        """Nothing to do on TCP."""

    def receive_timeout(self) -> None:
        """A partial APDU that never completes cannot be resynchronised."""
        if self._stream.buffered_bytes:
            self._stream.clear()
            raise ZvtFrameError("truncated APDU on the TCP stream")

    def reset(self) -> None:
        """Drop all state."""
        self._stream.clear()
        self._out.clear()


def make_link(framing: str, *, frame_bytes_max: int, retries_max: int) -> SerialLink | TcpLink:
    """A link for ``framing`` ``"serial"`` or ``"tcp"``."""
    if framing == "serial":
        return SerialLink(frame_bytes_max=frame_bytes_max, retries_max=retries_max)
    if framing == "tcp":
        return TcpLink(apdu_bytes_max=frame_bytes_max)
    raise ZvtUsageError(f"unknown framing {framing!r}")
