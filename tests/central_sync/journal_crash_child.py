"""A journal writer that the crash test SIGKILLs at random moments.

Usage: journal_crash_child.py PATH RUN APPENDERS [RETRY_ID ...]
Prints "A <payment_id>" before each append and "OK <payment_id> <seq> <hash>"
after it returns, straight to fd 1 so nothing sits in a buffer when killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import zlib

from central_sync.journal import Journal, PaymentIntent


def payment(payment_id: str) -> PaymentIntent:
    return PaymentIntent(
        payment_id=payment_id,
        amount_minor=zlib.crc32(payment_id.encode()) % 100_000 + 1,
        currency="RUB",
        account="1000000017",
        channel="gateway",
    )


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


async def append(journal: Journal, payment_id: str) -> None:
    say(f"A {payment_id}")
    entry = await journal.record_payment_intent(payment(payment_id))
    say(f"OK {payment_id} {entry.seq} {entry.hash.hex()}")


async def main(path: str, run: int, appenders: int, retry: list[str]) -> None:
    journal = await Journal.open(path)
    say("READY")
    await asyncio.gather(*(append(journal, pid) for pid in retry))

    async def worker(w: int) -> None:
        for i in range(100_000):  # bounded; the test kills us long before
            await append(journal, f"pay-r{run:04d}-w{w:03d}-{i:06d}")

    await asyncio.gather(*(worker(w) for w in range(appenders)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]))
