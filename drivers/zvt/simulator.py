"""A ZVT payment terminal simulator speaking the same bytes as a real one.

It serves the ECR over a pty (``os.openpty``; the ECR opens the slave path,
optionally through a stable symlink, the way udev names USB adapters) with the
serial framing, or over TCP (``serve_tcp``) with the TCP/IP framing or, for a
serial device server, the serial framing.

Theory of operation. The simulator is the terminal side of the same link layer
(:mod:`drivers.zvt.link`) and codec (:mod:`drivers.zvt.messages`) as the
driver. One task per connection reads bytes, answers link ACK/NAK and queues
the ECR's APDUs; a second task runs one command at a time:

* Authorization: ``80 00`` → 04 FF "insert card" → (card wait; an ECR Abort
  06 B0 here ends the payment with 06 1E 6C) → 04 FF "enter PIN" → 04 FF
  "processing" → booking in the transaction log → 04 FF "remove card" →
  Status-Information → receipt lines (if the ECR registered as printer) →
  Completion 06 0F (approved) or Abort 06 1E (declined). Every terminal message
  waits for the ECR's ``80 00``.
* Reversal by receipt number, Repeat Receipt (Status-Information of the last
  logged transaction), End-of-Day (totals of the unsettled approved payments,
  BMP 60), Status Enquiry (software version and terminal status), Registration.

Scripted outcomes (:meth:`TerminalSimulator.script`) decide each payment:
approved, declined, approved offline, timeout (the payment is booked, then the
terminal stops answering for ``silence_s``), busy (``84 9C``), aborted by the
customer. Faults (:meth:`TerminalSimulator.inject`) act on the wire: a frame
sent with a corrupt checksum, the ECR's frames NAKed (by corrupting them on
arrival), garbage before a frame, a dropped connection. The log survives
connections, so recovery after a lost answer finds the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Final

from drivers.zvt import codes
from drivers.zvt.apdu import Apdu, _NeedData, encode_apdu
from drivers.zvt.errors import ZvtApduError, ZvtError, ZvtProtocolError
from drivers.zvt.fields import mask_pan
from drivers.zvt.framing import DLE, STX
from drivers.zvt.link import SerialLink, TcpLink, make_link
from drivers.zvt.messages import (
    CONFIG_ECR_PRINTS_PAYMENT,
    CONFIG_PRINT_VIA_PRINT_LINE,
    NACK_UNKNOWN_COMMAND,
    PAYMENT_TYPE_OFFLINE,
    PAYMENT_TYPE_ONLINE,
    TOTALS_SCHEMES,
    AbortRequest,
    Ack,
    Authorization,
    Completion,
    EndOfDay,
    EndOfDayTotals,
    IntermediateStatus,
    Nack,
    PrintLine,
    PrintTextBlock,
    Registration,
    RepeatReceipt,
    Reversal,
    SchemeTotal,
    StatusEnquiry,
    StatusInformation,
    TerminalAbort,
    decode_ecr_command,
)

logger = logging.getLogger(__name__)

LOG_ENTRIES_MAX: Final = 10_000
INBOX_APDUS_MAX: Final = 64
_GARBAGE: Final = bytes.fromhex("A5 5A 00 FF 42 13 37 99")
# An unknown but well-formed APDU: what "garbage" means on a TCP stream, where
# anything else would make the stream unreadable for good.
_TCP_GARBAGE: Final = bytes.fromhex("0F 99 02 A5 5A")
_CORRUPT_MASK: Final = 0x20  # flips CLASS 04/06/80/84 to 24/26/A0/A4, never DLE
_SCHEME_OF_CARD_TYPE: Final = {0x05: "girocard", 0x06: "eurocard", 0x0A: "visa"}
SW_VERSION: Final = "lobbypay-zvt-sim/1.0"


class Outcome(StrEnum):
    """What the next payment does."""

    APPROVED = "approved"
    DECLINED = "declined"
    APPROVED_OFFLINE = "approved-offline"
    TIMEOUT = "timeout"
    BUSY = "busy"
    CUSTOMER_ABORT = "customer-abort"


class Fault(StrEnum):
    """Communication faults injected on the wire."""

    BAD_CRC = "bad-crc"
    NAK = "nak"
    GARBAGE = "garbage"
    DISCONNECT = "disconnect"


@dataclass(slots=True, kw_only=True)
class _FaultPlan:
    fault: Fault
    count: int
    skip: int


@dataclass(slots=True, kw_only=True)
class TransactionRecord:
    """One entry of the simulator's own transaction log."""

    kind: str  # "payment", "reversal" or "end_of_day"
    receipt_no: int
    trace_no: int
    amount_minor: int
    currency: str
    result_code: int
    offline: bool = False
    card_number: str | None = None
    card_type: int | None = None
    card_name: str | None = None
    auth_code: str | None = None
    date_mmdd: str = "0101"
    time_hhmmss: str = "000000"
    reversed: bool = False
    settled: bool = False
    reversal_of: int | None = None
    totals: EndOfDayTotals | None = None

    @property
    def approved(self) -> bool:
        """Result code 00."""
        return self.result_code == codes.RESULT_OK

    def status_information(self, terminal_id: str) -> StatusInformation:
        """The Status-Information the terminal reports for this record."""
        payment_type = None
        if self.kind == "payment" and self.approved:
            payment_type = PAYMENT_TYPE_OFFLINE if self.offline else PAYMENT_TYPE_ONLINE
        return StatusInformation(
            result_code=self.result_code,
            amount_minor=self.amount_minor,
            currency=self.currency,
            trace_no=self.trace_no,
            receipt_no=self.receipt_no if self.kind != "end_of_day" else None,
            masked_pan=mask_pan(self.card_number) if self.card_number else None,
            card_type=self.card_type,
            card_name=self.card_name,
            auth_code=self.auth_code,
            date_mmdd=self.date_mmdd,
            time_hhmmss=self.time_hhmmss,
            terminal_id=terminal_id,
            payment_type=payment_type,
            totals=self.totals,
        )


class _Disconnect(Exception):
    """The simulator drops the connection (a DISCONNECT fault)."""


class _EcrGone(Exception):
    """The ECR did not acknowledge in time; the command ends."""


# ---------------------------------------------------------------- channels


class _Channel:
    async def read(self) -> bytes:
        raise NotImplementedError

    async def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _PtyChannel(_Channel):
    """The master side of a pty, non-blocking, read through the event loop."""

    _WRITE_TIMEOUT_S: Final = 2.0

    def __init__(self, master_fd: int) -> None:
        self._fd = master_fd
        os.set_blocking(master_fd, False)
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=256)
        self._closed = False
        self._loop.add_reader(master_fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._loop.remove_reader(self._fd)
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(data)

    async def read(self) -> bytes:
        if self._closed:
            return b""
        return await self._queue.get()

    async def write(self, data: bytes) -> None:
        deadline = self._loop.time() + self._WRITE_TIMEOUT_S
        view = memoryview(data)
        while view:
            if self._closed:
                raise _Disconnect
            try:
                n = os.write(self._fd, view)
            except BlockingIOError:
                if self._loop.time() > deadline:
                    raise _Disconnect from None
                await asyncio.sleep(0.01)
                continue
            except OSError:
                raise _Disconnect from None
            view = view[n:]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(b"")


class _StreamChannel(_Channel):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self) -> bytes:
        try:
            return await self._reader.read(4096)
        except OSError:
            return b""

    async def write(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            await asyncio.wait_for(self._writer.drain(), timeout=2.0)
        except (OSError, TimeoutError):
            raise _Disconnect from None

    def close(self) -> None:
        self._writer.close()


# ---------------------------------------------------------------- session


class _PtSession:
    """One ECR connection, terminal side."""

    def __init__(
        self,
        sim: TerminalSimulator,
        channel: _Channel,
        framing: str,
        *,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.sim = sim
        self._on_end = on_end
        self.channel = channel
        self.framing = framing
        self.link: SerialLink | TcpLink = make_link(
            framing, frame_bytes_max=sim.frame_bytes_max, retries_max=3
        )
        self.inbox: asyncio.Queue[Apdu | None] = asyncio.Queue(maxsize=INBOX_APDUS_MAX)
        self.link_idle = asyncio.Event()
        self.link_idle.set()
        self.abortable = False
        self.abort_requested = False
        self.link_failed = False
        self._silent_until = 0.0
        self._frames_seen = 0
        self._corrupt_next_incoming = False
        self._loop = asyncio.get_running_loop()
        self._closed = False

    async def run(self) -> None:
        reader = asyncio.create_task(self._read_loop())
        try:
            while True:
                apdu = await self.inbox.get()
                if apdu is None:
                    return
                self.abort_requested = False
                self.abortable = False
                try:
                    await self.sim._dispatch(self, apdu)
                except _EcrGone:
                    logger.info("zvt_sim_ecr_did_not_ack")
        except (_Disconnect, ZvtError) as exc:
            logger.info("zvt_sim_session_end reason=%s", type(exc).__name__)
        finally:
            self._closed = True
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            self.channel.close()
            if self._on_end is not None:
                self._on_end()

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self.channel.read()
                if not data:
                    break
                if self._loop.time() < self._silent_until:
                    continue
                data = self._maybe_corrupt_incoming(data)
                self.link.receive_data(data)
                while True:
                    try:
                        apdu = self.link.next_apdu()
                    except ZvtApduError:
                        continue
                    except ZvtError:
                        # Our frame was NAKed too often: abandon the command,
                        # keep the line (what a terminal does).
                        self.link_failed = True
                        self.link_idle.set()
                        continue
                    if isinstance(apdu, _NeedData):
                        break
                    if self.inbox.full():
                        logger.warning("zvt_sim_inbox_full")
                        continue
                    self.inbox.put_nowait(apdu)
                if not self.link.awaiting_ack:
                    self.link_idle.set()
                await self.flush()
        except (_Disconnect, ZvtError) as exc:
            logger.info("zvt_sim_link_end reason=%s", type(exc).__name__)
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                self.inbox.put_nowait(None)

    def _maybe_corrupt_incoming(self, data: bytes) -> bytes:
        out = bytearray(data)
        if self._corrupt_next_incoming and out:
            out[0] ^= _CORRUPT_MASK
            self._corrupt_next_incoming = False
        i = out.find(bytes((DLE, STX)))
        while i >= 0 and self.framing == "serial" and self.sim._take_fault(Fault.NAK):
            if i + 2 < len(out):
                out[i + 2] ^= _CORRUPT_MASK
            else:
                self._corrupt_next_incoming = True
            i = out.find(bytes((DLE, STX)), i + 2)
        return bytes(out)

    async def flush(self) -> None:
        data = self.link.data_to_send()
        new_frame = self.link.frames_sent != self._frames_seen
        self._frames_seen = self.link.frames_sent
        if not data:
            return
        if new_frame:
            if self.sim._take_fault(Fault.GARBAGE):
                data = (_GARBAGE if self.framing == "serial" else _TCP_GARBAGE) + data
            if self.framing == "serial" and self.sim._take_fault(Fault.BAD_CRC):
                start = data.find(bytes((DLE, STX)))
                if start >= 0 and start + 2 < len(data):
                    buf = bytearray(data)
                    buf[start + 2] ^= _CORRUPT_MASK
                    data = bytes(buf)
        await self.channel.write(data)

    async def send(self, apdu: Apdu) -> None:
        """Send one APDU and, on a serial line, wait until the ECR's link ACK."""
        if self._closed:
            raise _Disconnect
        if self.sim._take_fault(Fault.DISCONNECT):
            logger.info("zvt_sim_fault_disconnect")
            raise _Disconnect
        self.link.send_apdu(encode_apdu(apdu))
        if self.link.awaiting_ack:
            self.link_idle.clear()
        await self.flush()
        while self.link.awaiting_ack:
            try:
                await asyncio.wait_for(self.link_idle.wait(), timeout=self.sim.link_ack_timeout_s)
            except TimeoutError:
                try:
                    self.link.ack_timeout()
                except ZvtError:
                    self.link_failed = True
                await self.flush()
        if self.link_failed:
            self.link_failed = False
            raise _EcrGone

    async def recv(self, timeout_s: float) -> Apdu | None:
        """The next ECR APDU other than an abort request, or None after ``timeout_s``."""
        deadline = self._loop.time() + timeout_s
        while True:
            left = deadline - self._loop.time()
            if left <= 0:
                return None
            try:
                apdu = await asyncio.wait_for(self.inbox.get(), timeout=left)
            except TimeoutError:
                return None
            if apdu is None:
                raise _Disconnect
            if (apdu.cls, apdu.instr) == AbortRequest.CONTROL:
                self.sim.commands_seen.append("AbortRequest")
                if self.abortable:
                    self.abort_requested = True
                    await self.sim._send(self, Ack())
                else:
                    await self.sim._send(self, Nack(error_code=NACK_UNKNOWN_COMMAND))
                if self.abort_requested:
                    return None
                continue
            return apdu

    async def go_silent(self, seconds: float) -> None:
        """Stop answering anything for ``seconds`` (a terminal that hangs)."""
        self._silent_until = self._loop.time() + seconds
        await asyncio.sleep(seconds)
        while not self.inbox.empty():
            if self.inbox.get_nowait() is None:
                raise _Disconnect
        self.link.reset()
        self.link_idle.set()


# ---------------------------------------------------------------- endpoints


class PtyEndpoint:
    """A simulator served on a pty; ``path`` is what the ECR opens."""

    def __init__(self, sim: TerminalSimulator, *, link_path: Path | None, framing: str) -> None:
        self._sim = sim
        self._link_path = link_path
        self._framing = framing
        self._master = -1
        self._slave = -1
        self._task: asyncio.Task[None] | None = None
        self._session: _PtSession | None = None
        self.slave_path = ""

    @property
    def path(self) -> str:
        """The symlink if one was asked for, else the pty slave path."""
        return str(self._link_path) if self._link_path is not None else self.slave_path

    async def plug(self) -> None:
        """Create the pty (again) and start serving it."""
        if self._task is not None:
            return
        self._master, self._slave = os.openpty()
        # Raw mode on our own slave handle: no echo, no line editing, 8 bits.
        tty.setraw(self._slave)
        self.slave_path = os.ttyname(self._slave)
        if self._link_path is not None:
            tmp = self._link_path.with_name(self._link_path.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.slave_path)
            tmp.replace(self._link_path)
        session = _PtSession(
            self._sim, _PtyChannel(self._master), self._framing, on_end=self._close_fds
        )
        self._session = session
        self._task = asyncio.create_task(session.run())
        logger.info("zvt_sim_pty_plugged path=%s", self.slave_path)

    async def unplug(self) -> None:
        """Close the pty as if the cable were pulled: the ECR's port fails."""
        task, self._task = self._task, None
        if self._session is not None:
            self._session.channel.close()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._close_fds()

    def _close_fds(self) -> None:
        """Close both ends of the pty: the ECR's port now fails (EIO)."""
        if self._master < 0 and self._slave < 0:
            return
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1
        self._task = None
        logger.info("zvt_sim_pty_unplugged")

    async def replug(self) -> None:
        """Unplug, then plug a fresh pty (the symlink follows)."""
        await self.unplug()
        await self.plug()

    async def close(self) -> None:
        """Stop serving and remove the symlink."""
        await self.unplug()
        if self._link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._link_path.unlink()


class TcpEndpoint:
    """A simulator served on TCP; ``port`` is the bound port."""

    def __init__(self, sim: TerminalSimulator, framing: str) -> None:
        self._sim = sim
        self._framing = framing
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._channels: set[_StreamChannel] = set()
        self.host = ""
        self.port = 0

    @property
    def url(self) -> str:
        """The URL the driver opens: ``tcp://`` or ``socket://`` by framing."""
        scheme = "tcp" if self._framing == "tcp" else "socket"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self, host: str, port: int) -> None:
        """Listen."""
        self._server = await asyncio.start_server(self._on_client, host, port)
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        logger.info("zvt_sim_tcp_listening host=%s port=%d", self.host, self.port)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        channel = _StreamChannel(reader, writer)
        self._channels.add(channel)
        session = _PtSession(self._sim, channel, self._framing)
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await session.run()
        except asyncio.CancelledError:
            # Server shutdown. Ending quietly keeps asyncio's stream callback
            # from logging the cancellation as an error.
            pass
        finally:
            self._sessions.discard(task)
            self._channels.discard(channel)

    def disconnect_all(self) -> None:
        """Drop every ECR connection (the server keeps listening)."""
        for channel in list(self._channels):
            channel.close()

    async def close(self) -> None:
        """Stop listening and drop connections."""
        self.disconnect_all()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2.0)
        for task in list(self._sessions):
            task.cancel()


# ---------------------------------------------------------------- simulator


@dataclass(slots=True, kw_only=True)
class SimulatorConfig:
    """Knobs of the simulated terminal."""

    terminal_id: str = "52523535"
    card_number: str = "220220******0014"
    card_type: int | None = None
    card_name: str = "MIR"
    decline_code: int = 0x05
    step_delay_s: float = 0.0
    card_wait_s: float = 0.0
    silence_s: float = 2.0
    ecr_ack_timeout_s: float = 5.0
    link_ack_timeout_s: float = 1.0
    receipt_as_text_block: bool = False
    text_encoding: str = "cp437"
    frame_bytes_max: int = 16_389
    default_outcome: Outcome = Outcome.APPROVED


class TerminalSimulator:
    """The simulated terminal: scripted outcomes, faults and its own transaction log."""

    def __init__(self, config: SimulatorConfig | None = None, **overrides: object) -> None:
        cfg = config or SimulatorConfig()
        for key, value in overrides.items():
            if not hasattr(cfg, key):
                raise TypeError(f"unknown simulator option {key!r}")
            setattr(cfg, key, value)
        self.config = cfg
        self.log: deque[TransactionRecord] = deque(maxlen=LOG_ENTRIES_MAX)
        self.commands_seen: list[str] = []
        self.registered_config: int | None = None
        self._outcomes: deque[Outcome] = deque()
        self._faults: list[_FaultPlan] = []
        self._receipt_no = 0
        self._trace_no = 0
        self._busy = asyncio.Lock()

    # --------------------------------------------------------- scripting

    @property
    def frame_bytes_max(self) -> int:
        """Bound of one frame."""
        return self.config.frame_bytes_max

    @property
    def link_ack_timeout_s(self) -> float:
        """How long the terminal waits for a link ACK."""
        return self.config.link_ack_timeout_s

    def script(self, *outcomes: Outcome) -> None:
        """Queue outcomes for the next payments (then ``default_outcome``)."""
        self._outcomes.extend(outcomes)

    def inject(self, fault: Fault, *, count: int = 1, skip: int = 0) -> None:
        """Inject ``fault`` ``count`` times after ``skip`` occasions pass.

        BAD_CRC and GARBAGE count frames the terminal sends, NAK counts frames
        it receives, DISCONNECT counts messages it sends.
        """
        self._faults.append(_FaultPlan(fault=fault, count=count, skip=skip))

    def pending_faults(self) -> int:
        """How many injected faults have not fired yet."""
        return sum(p.count for p in self._faults)

    def last_record(self) -> TransactionRecord | None:
        """The newest log entry."""
        return self.log[-1] if self.log else None

    def _take_fault(self, fault: Fault) -> bool:
        for plan in self._faults:
            if plan.fault is not fault or plan.count <= 0:
                continue
            if plan.skip > 0:
                plan.skip -= 1
                return False
            plan.count -= 1
            if plan.count == 0:
                self._faults.remove(plan)
            logger.info("zvt_sim_fault fault=%s", fault.value)
            return True
        return False

    def _next_outcome(self) -> Outcome:
        return self._outcomes.popleft() if self._outcomes else self.config.default_outcome

    # --------------------------------------------------------- serving

    async def serve_pty(
        self, *, link_path: str | Path | None = None, framing: str = "serial"
    ) -> PtyEndpoint:
        """Serve on a new pty; the returned endpoint's ``path`` is for the ECR."""
        endpoint = PtyEndpoint(
            self, link_path=Path(link_path) if link_path is not None else None, framing=framing
        )
        await endpoint.plug()
        return endpoint

    async def serve_tcp(
        self, host: str = "127.0.0.1", port: int = 0, *, framing: str = "tcp"
    ) -> TcpEndpoint:
        """Serve on TCP (``framing`` ``tcp`` for ZVT TCP/IP, ``serial`` for ser2net style)."""
        endpoint = TcpEndpoint(self, framing)
        await endpoint.start(host, port)
        return endpoint

    # --------------------------------------------------------- protocol

    async def _send(self, s: _PtSession, message: object) -> None:
        enc = self.config.text_encoding
        if isinstance(message, StatusInformation | PrintLine | PrintTextBlock):
            apdu = message.to_apdu(text_encoding=enc)
        elif isinstance(message, Ack | Nack | IntermediateStatus | Completion | TerminalAbort):
            apdu = message.to_apdu()
        else:
            raise TypeError(f"cannot send {type(message).__name__}")
        await s.send(apdu)

    async def _send_acked(
        self, s: _PtSession, message: object, *, pan_digits: str | None = None
    ) -> None:
        if isinstance(message, StatusInformation) and pan_digits is not None:
            apdu = message.to_apdu(pan_digits=pan_digits, text_encoding=self.config.text_encoding)
            await s.send(apdu)
        else:
            await self._send(s, message)
        reply = await s.recv(self.config.ecr_ack_timeout_s)
        if reply is None and s.abort_requested:
            # The abort request arrived instead of the ACK; take the ACK too.
            reply = await s.recv(self.config.ecr_ack_timeout_s)
        if reply is None or reply.cls not in (0x80, 0x84):
            raise _EcrGone

    async def _status(self, s: _PtSession, code: int) -> None:
        await self._send_acked(s, IntermediateStatus(code=code, timeout_s=0))
        if self.config.step_delay_s:
            await asyncio.sleep(self.config.step_delay_s)

    async def _dispatch(self, s: _PtSession, apdu: Apdu) -> None:
        try:
            command = decode_ecr_command(apdu, text_encoding=self.config.text_encoding)
        except ZvtProtocolError:
            logger.info("zvt_sim_unknown_command control=%02X%02X", apdu.cls, apdu.instr)
            await self._send(s, Nack(error_code=NACK_UNKNOWN_COMMAND))
            return
        self.commands_seen.append(type(command).__name__)
        if isinstance(command, Ack | Nack):
            return
        if isinstance(command, AbortRequest):
            await self._send(s, Ack())  # nothing runs: nothing to abort
            return
        if self._busy.locked():
            await self._send(s, Nack(error_code=0x9C))
            return
        async with self._busy:
            if isinstance(command, Authorization):
                await self._authorization(s, command)
            elif isinstance(command, Reversal):
                await self._reversal(s, command)
            elif isinstance(command, RepeatReceipt):
                await self._repeat_receipt(s)
            elif isinstance(command, EndOfDay):
                await self._end_of_day(s)
            elif isinstance(command, StatusEnquiry):
                await self._send(s, Ack())
                await self._send_acked(s, Completion(sw_version=SW_VERSION, terminal_status=0x00))
            elif isinstance(command, Registration):
                self.registered_config = command.config_byte
                await self._send(s, Ack())
                await self._send_acked(
                    s,
                    Completion(
                        status_byte=0x00,
                        terminal_id=self.config.terminal_id,
                        currency=command.currency,
                    ),
                )

    def _now(self) -> tuple[str, str]:
        now = datetime.now()
        return now.strftime("%m%d"), now.strftime("%H%M%S")

    def _next_numbers(self) -> tuple[int, int]:
        self._receipt_no = self._receipt_no % 9999 + 1
        self._trace_no = self._trace_no % 999_999 + 1
        return self._receipt_no, self._trace_no

    def _book(self, command: Authorization, outcome: Outcome) -> TransactionRecord:
        receipt, trace = self._next_numbers()
        approved = outcome in (Outcome.APPROVED, Outcome.APPROVED_OFFLINE, Outcome.TIMEOUT)
        date, time = self._now()
        record = TransactionRecord(
            kind="payment",
            receipt_no=receipt,
            trace_no=trace,
            amount_minor=command.amount_minor,
            currency=command.currency or "RUB",
            result_code=codes.RESULT_OK if approved else self.config.decline_code,
            offline=outcome is Outcome.APPROVED_OFFLINE,
            card_number=self.config.card_number,
            card_type=self.config.card_type,
            card_name=self.config.card_name,
            auth_code=f"{(receipt * 7919 + trace) % 1_000_000:06d}" if approved else None,
            date_mmdd=date,
            time_hhmmss=time,
        )
        self.log.append(record)
        logger.info(
            "zvt_sim_booked receipt_no=%d result=%02X offline=%s",
            receipt,
            record.result_code,
            record.offline,
        )
        return record

    async def _finish_aborted(self, s: _PtSession) -> None:
        await self._send_acked(s, TerminalAbort(result_code=codes.RESULT_ABORT))

    async def _authorization(self, s: _PtSession, command: Authorization) -> None:
        outcome = self._next_outcome()
        if outcome is Outcome.BUSY:
            await self._send(s, Nack(error_code=0x9C))
            return
        await self._send(s, Ack())
        s.abortable = True
        await self._status(s, codes.STATUS_INSERT_CARD)
        if not s.abort_requested and self.config.card_wait_s:
            await s.recv(self.config.card_wait_s)
        if s.abort_requested:
            await self._finish_aborted(s)
            return
        if outcome is Outcome.CUSTOMER_ABORT:
            info = StatusInformation(
                result_code=codes.RESULT_ABORT,
                amount_minor=command.amount_minor,
                currency=command.currency,
                terminal_id=self.config.terminal_id,
                additional_text="aborted by customer",
            )
            await self._send_acked(s, info)
            await self._finish_aborted(s)
            return
        await self._status(s, codes.STATUS_ENTER_PIN)
        if s.abort_requested:
            await self._finish_aborted(s)
            return
        s.abortable = False
        await self._status(s, codes.STATUS_PROCESSING)
        record = self._book(command, outcome)
        if outcome is Outcome.TIMEOUT:
            logger.info("zvt_sim_going_silent seconds=%s", self.config.silence_s)
            await s.go_silent(self.config.silence_s)
            return
        await self._status(s, codes.STATUS_REMOVE_CARD)
        info = record.status_information(self.config.terminal_id)
        await self._send_acked(s, info, pan_digits=record.card_number)
        if record.approved:
            await self._print_receipt(s, record)
            await self._send_acked(
                s,
                Completion(
                    status_byte=0x00, terminal_id=self.config.terminal_id, currency=record.currency
                ),
            )
        else:
            await self._send_acked(s, TerminalAbort(result_code=record.result_code))

    async def _reversal(self, s: _PtSession, command: Reversal) -> None:
        await self._send(s, Ack())
        await self._status(s, codes.STATUS_PLEASE_WAIT)
        original = next(
            (
                r
                for r in reversed(self.log)
                if r.kind == "payment" and r.receipt_no == command.receipt_no
            ),
            None,
        )
        if original is None or not original.approved or original.settled:
            await self._send_acked(s, TerminalAbort(result_code=0xB5))
            return
        if original.reversed:
            await self._send_acked(s, TerminalAbort(result_code=0xB4))
            return
        original.reversed = True
        receipt, trace = self._next_numbers()
        date, time = self._now()
        record = TransactionRecord(
            kind="reversal",
            receipt_no=receipt,
            trace_no=trace,
            amount_minor=original.amount_minor,
            currency=original.currency,
            result_code=codes.RESULT_OK,
            card_number=original.card_number,
            card_type=original.card_type,
            card_name=original.card_name,
            date_mmdd=date,
            time_hhmmss=time,
            reversal_of=original.receipt_no,
        )
        self.log.append(record)
        await self._send_acked(s, record.status_information(self.config.terminal_id))
        await self._print_receipt(s, record)
        await self._send_acked(s, Completion(status_byte=0x00, terminal_id=self.config.terminal_id))

    async def _repeat_receipt(self, s: _PtSession) -> None:
        await self._send(s, Ack())
        record = self.last_record()
        if record is not None:
            await self._send_acked(
                s,
                record.status_information(self.config.terminal_id),
                pan_digits=record.card_number,
            )
            await self._print_receipt(s, record)
        await self._send_acked(s, Completion(status_byte=0x00, terminal_id=self.config.terminal_id))

    async def _end_of_day(self, s: _PtSession) -> None:
        await self._send(s, Ack())
        await self._status(s, 0x0E)
        open_payments = [
            r for r in self.log if r.kind == "payment" and not r.settled and r.approved
        ]
        counted = [r for r in open_payments if not r.reversed]
        per_scheme: dict[str, tuple[int, int]] = {name: (0, 0) for name in TOTALS_SCHEMES}
        for r in counted:
            scheme = _SCHEME_OF_CARD_TYPE.get(r.card_type or -1, "others")
            n, total = per_scheme[scheme]
            per_scheme[scheme] = (min(n + 1, 0xFF), total + r.amount_minor)
        receipts = [r.receipt_no for r in open_payments]
        totals = EndOfDayTotals(
            receipt_no_start=min(receipts, default=0),
            receipt_no_end=max(receipts, default=0),
            schemes=tuple(
                SchemeTotal(scheme=name, count=n, total_minor=t)
                for name, (n, t) in per_scheme.items()
            ),
        )
        for r in open_payments:
            r.settled = True
        _receipt, trace = self._next_numbers()
        date, time = self._now()
        record = TransactionRecord(
            kind="end_of_day",
            receipt_no=_receipt,
            trace_no=trace,
            amount_minor=totals.total_minor,
            currency=open_payments[0].currency if open_payments else "RUB",
            result_code=codes.RESULT_OK,
            date_mmdd=date,
            time_hhmmss=time,
            totals=totals,
        )
        self.log.append(record)
        await self._send_acked(s, record.status_information(self.config.terminal_id))
        await self._print_receipt(s, record)
        await self._send_acked(s, Completion(status_byte=0x00, terminal_id=self.config.terminal_id))

    def receipt_lines(self, record: TransactionRecord) -> list[str]:
        """The receipt text the terminal sends for ``record``."""
        whole, cents = divmod(record.amount_minor, 100)
        lines = [
            "LOBBYPAY SIMULATED TERMINAL",
            f"TID {self.config.terminal_id}",
            f"{record.kind.upper().replace('_', ' ')}",
            f"RECEIPT {record.receipt_no:04d}  TRACE {record.trace_no:06d}",
        ]
        if record.card_number:
            lines.append(f"CARD {mask_pan(record.card_number)}")
        lines.append(f"AMOUNT {whole}.{cents:02d} {record.currency}")
        if record.totals is not None:
            lines.append(f"COUNT {record.totals.count}")
        if record.auth_code:
            lines.append(f"AUTH {record.auth_code}")
        lines.append("OFFLINE APPROVED" if record.offline else "APPROVED")
        return lines

    async def _print_receipt(self, s: _PtSession, record: TransactionRecord) -> None:
        cfg = self.registered_config
        if cfg is None or not (
            cfg & CONFIG_PRINT_VIA_PRINT_LINE and cfg & CONFIG_ECR_PRINTS_PAYMENT
        ):
            return
        lines = self.receipt_lines(record)
        if self.config.receipt_as_text_block:
            await self._send_acked(s, PrintTextBlock(lines=tuple(lines), receipt_type=0x02))
            return
        for i, line in enumerate(lines):
            attribute = 0x80 if i == len(lines) - 1 else 0x00
            await self._send_acked(s, PrintLine(attribute=attribute, text=line))
