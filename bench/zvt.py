"""Benchmark: the ZVT stack beside raw baselines measured in the same run.

1. Codec: serial frames encoded and decoded per second (APDU → DLE/STX frame
   with CRC → decoder → APDU), and whole terminal messages (Status-Information
   → bytes → StatusInformation, card number masked on the way), beside
   ``binascii.crc_hqx`` over the same bytes (a C checksum pass: the floor).
2. One full authorization against the simulator (a separate process) over a
   real pty, with the receipt lines a kiosk registers for, beside the raw pty
   round trip (write N bytes to the slave, an echo thread on the master sends
   them back) measured in the same run. The serial protocol is stop-and-wait,
   so one authorization costs about ``2 × frames`` round trips; what is left
   after subtracting them is the time our stack (and the simulator's) adds.

    python bench/zvt.py [--quick]

The last line is ``zvt_auth_vs_raw_rtt_ratio=<x>``: authorization time over
the raw round-trip time of its frames.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import os
import select
import statistics
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.zvt.apdu import NEED_DATA, decode_apdu, encode_apdu
from drivers.zvt.client import ZvtTerminal
from drivers.zvt.framing import FrameDecoder, FrameReceived, encode_frame
from drivers.zvt.messages import StatusInformation, decode_pt_message
from drivers.zvt.session import ZvtTimeouts

STATUS = StatusInformation(
    result_code=0,
    amount_minor=123_45,
    currency="RUB",
    trace_no=4711,
    receipt_no=42,
    masked_pan="220220******0014",
    card_name="MIR",
    auth_code="123456",
    date_mmdd="1122",
    time_hhmmss="101530",
    terminal_id="52523535",
    payment_type=0x60,
)


def rate(fn: object, seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds``."""
    assert callable(fn)
    n = 0
    batch = 200
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            fn()
        n += batch
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def bench_codec(seconds: float) -> None:
    apdu = encode_apdu(STATUS.to_apdu(pan_digits="4111111111111111"))
    frame = encode_frame(apdu)
    decoder = FrameDecoder()

    def crc_only() -> None:
        binascii.crc_hqx(apdu, 0)

    def frame_roundtrip() -> None:
        decoder.receive_data(encode_frame(apdu))
        event = decoder.next_event()
        assert isinstance(event, FrameReceived)
        assert decoder.next_event() is NEED_DATA

    def message_roundtrip() -> None:
        decoder.receive_data(encode_frame(encode_apdu(STATUS.to_apdu())))
        event = decoder.next_event()
        assert isinstance(event, FrameReceived)
        decoder.next_event()
        decode_pt_message(decode_apdu(event.apdu))

    base = rate(crc_only, seconds)
    frames = rate(frame_roundtrip, seconds)
    messages = rate(message_roundtrip, seconds)
    print(f"codec ({len(apdu)}-byte Status-Information APDU, {len(frame)}-byte frame):")
    print(f"  baseline binascii.crc_hqx            {base:12.0f} /s")
    print(f"  frame encode+decode                  {frames:12.0f} /s")
    print(f"  message → frame → message (masked)   {messages:12.0f} /s")
    print(f"  ratio frame/crc  {frames / base:.4f}   message/crc  {messages / base:.4f}")


def raw_pty_rtt(rounds: int, size: int) -> float:
    """Median seconds to write ``size`` bytes to a pty slave and read them back via an echo."""
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def echo() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                data = os.read(master, 4096)
                if not data:
                    return
                os.write(master, data)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    payload = bytes(range(size % 256)) * (size // 256) + bytes(range(size % 256))
    payload = payload[:size] or b"\x00"
    samples = []
    try:
        for _ in range(rounds):
            start = time.perf_counter()
            os.write(slave, payload)
            got = 0
            while got < len(payload):
                got += len(os.read(slave, 4096))
            samples.append(time.perf_counter() - start)
    finally:
        stop.set()
        thread.join(1)
        os.close(master)
        os.close(slave)
    return statistics.median(samples)


def start_simulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "firmware_config.dispatch",
            "terminal",
            "simulate",
            "--pty",
            "--delay",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    if not ready:
        proc.kill()
        raise SystemExit("simulator did not start")
    line = proc.stdout.readline().strip()
    return proc, line.split(": ", 1)[1]


async def bench_authorization(path: str, payments: int) -> tuple[list[float], int]:
    timeouts = ZvtTimeouts(progress_timeout_s=10, completion_timeout_s=10)
    async with ZvtTerminal(path, timeouts=timeouts) as terminal:
        await terminal.register()
        await terminal.pay(100)  # warm up
        samples = []
        frames = 0
        for i in range(payments):
            before = terminal.link_counters.frames_sent
            start = time.perf_counter()
            outcome = await terminal.pay(100 + i)
            samples.append(time.perf_counter() - start)
            frames = terminal.link_counters.frames_sent - before
            assert outcome.approved
    return samples, frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (under 20 s)")
    args = parser.parse_args()
    seconds = 0.7 if args.quick else 3.0
    payments = 15 if args.quick else 100
    rounds = 300 if args.quick else 3000

    print(f"zvt bench ({'quick' if args.quick else 'full'} run)")
    bench_codec(seconds)

    proc, path = start_simulator()
    try:
        samples, ecr_frames = asyncio.run(bench_authorization(path, payments))
    finally:
        proc.terminate()
        proc.wait(10)
    frame_rtt = raw_pty_rtt(rounds, 24)
    ack_rtt = raw_pty_rtt(rounds, 1)
    round_trips = 2 * ecr_frames
    auth = statistics.median(samples)
    p95 = sorted(samples)[int(len(samples) * 0.95) - 1]
    raw_total = round_trips * frame_rtt
    print(f"authorization over a pty ({payments} payments, simulator in its own process):")
    print(f"  baseline raw pty round trip, 24 bytes   {frame_rtt * 1e6:9.1f} µs")
    print(f"  baseline raw pty round trip, 1 byte     {ack_rtt * 1e6:9.1f} µs")
    print(f"  frames per authorization (both ways)    {round_trips:9d}")
    print(f"  raw round trips of those frames         {raw_total * 1e3:9.2f} ms")
    print(f"  authorization p50                       {auth * 1e3:9.2f} ms")
    print(f"  authorization p95                       {p95 * 1e3:9.2f} ms")
    print(f"  stack time added (p50 - raw)            {(auth - raw_total) * 1e3:9.2f} ms")
    per_frame_us = (auth - raw_total) / round_trips * 1e6
    print(f"  per frame added                         {per_frame_us:9.1f} µs")
    ratio = auth / raw_total
    print(f"zvt_auth_vs_raw_rtt_ratio={ratio:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
