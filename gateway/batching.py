"""Blocking calls on one worker thread, many per hop: group commit for reads.

Theory of operation
-------------------
Catalog and index lookups are SQLite reads: tens of microseconds, but they
may touch the disk, so they do not run on the event loop. Handing each one to
a thread separately costs more than the read (a future, a wake-up of the
worker, a wake-up of the loop, two GIL hand-overs). :class:`BatchRunner`
does what the journal does for writes: callers queue their call and wait; one
drain task hands everything queued to the worker thread in a single hop, up to
``batch_max`` calls, and wakes each caller with its own result or exception.
While one batch runs, the next one gathers. Under light load a batch is one
call; under heavy load the hop is shared by hundreds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

__all__ = ["BatchRunner"]

T = TypeVar("T")
BATCH_MAX_DEFAULT: Final = 256
PENDING_MAX_DEFAULT: Final = 100_000


def _run_all(calls: list[Callable[[], Any]]) -> list[tuple[bool, Any]]:
    results: list[tuple[bool, Any]] = []
    for call in calls:
        try:
            results.append((True, call()))
        except Exception as exc:  # handed back to its caller, never lost
            results.append((False, exc))
    return results


class BatchRunner:
    """Runs blocking callables on one dedicated thread, batching concurrent calls."""

    def __init__(
        self,
        name: str,
        *,
        batch_max: int = BATCH_MAX_DEFAULT,
        pending_max: int = PENDING_MAX_DEFAULT,
    ) -> None:
        assert batch_max >= 1
        assert pending_max >= batch_max
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._batch_max = batch_max
        self._pending_max = pending_max
        self._pending: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._closed = False

    async def run(self, call: Callable[[], T]) -> T:
        """Run ``call()`` on the worker thread; return its result or raise its exception."""
        if self._closed:
            raise RuntimeError("batch runner is closed")
        if len(self._pending) >= self._pending_max:
            raise RuntimeError("too many blocking calls queued")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((call, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch = self._pending[: self._batch_max]
            del self._pending[: self._batch_max]
            try:
                results = await loop.run_in_executor(
                    self._executor, _run_all, [call for call, _ in batch]
                )
            except BaseException as exc:  # the executor itself failed: tell every caller
                for _, future in batch:
                    if not future.done():
                        future.set_exception(RuntimeError(f"worker thread failed: {exc!r}"))
                raise
            for (_, future), (ok, value) in zip(batch, results, strict=True):
                if future.done():  # the caller was cancelled
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    async def close(self, final: Callable[[], Any] | None = None) -> None:
        """Finish queued calls, run ``final`` on the worker thread, stop the thread."""
        self._closed = True
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
        if final is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, final)
        self._executor.shutdown(wait=True)
