"""Deterministic simulation of the sync agent and central over a faulty network.

Issue 3, "Deterministic simulation". The agent (:class:`central_sync.agent.SyncAgent`,
unchanged), a terminal journal and central (the real :class:`Ingestor` over the
real SQLite storage, in-process, without HTTP) run in one process, in *virtual
time*, over a simulated network that drops, duplicates, corrupts, delays (and so
reorders) and partitions messages; the agent is killed mid-flight and restarted
from its journal, and central is restarted (its storage closed and reopened).
Everything is drawn from one seed, so any failure replays exactly.

Theory of operation
-------------------
:class:`World` holds virtual time and a queue of timed actions (deliveries,
appends, crashes, restarts). Nothing runs on its own: time moves only when the
agent waits — in :meth:`VirtualClock.wait` or in :meth:`SimTransport.request`
— and then the world runs every action due before the wait ends, in time order
(ties in the order they were scheduled). Everything is awaited one thing after
another on one task, so the order of effects depends only on the seed.

A request is *delivered* to central after a random delay; central's answer comes
back after another. If the answer is not back by the agent's timeout the agent
sees a timeout, while the request may still be delivered later — after newer
ones, which is how the network reorders. A duplicate is a second delivery of
the same bytes. A crash is an action that raises :class:`SimCrash` (a
``BaseException``, like being killed: the agent's error handling does not see
it) out of whatever the agent was waiting on.

:func:`run_simulation` builds a scenario from a seed, runs it, heals the
network, lets the agent finish, and checks the invariants: every appended entry
applied exactly once at central, heads equal, totals equal, no payment
duplicated, no alarm, every entry acknowledged in the journal.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import json
import logging
import random
import shutil
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import protocol
from central_sync.agent import AgentConfig, Response, SyncAgent
from central_sync.agent.core import BATCHES_PATH, CATALOG_PATH, HEARTBEAT_PATH, TERMINAL_HEADER
from central_sync.agent.errors import AnswerTooLargeError, TransportError, TransportTimeoutError
from central_sync.central.handlers import REFUSAL_STATUS
from central_sync.central.ingest import Ingestor
from central_sync.central.sqlite import SqliteStorage
from central_sync.central.storage import TerminalState
from central_sync.central.synthetic import payment_bodies
from central_sync.journal import (
    KIND_DEVICE_EVENT,
    KIND_METER_READING,
    KIND_PAYMENT_INTENT,
    KIND_PAYMENT_RESULT,
    KIND_REVERSAL,
    EntryState,
    Journal,
)
from central_sync.protocol import RefusalKind
from firmware_config.identity import Identity

EPOCH_MS = 1_750_000_000_000
"""Virtual time 0 on the wall clock (June 2025)."""
TRACE_LINES_MAX = 20_000
RESPONSE_TIMEOUT_S = 10.0
CONNECT_FAIL_S = 0.05
"""How long a refused connection takes to fail."""
CHECK_INTERVAL_S = 5.0
QUIET_DEADLINE_S = 3600.0
"""After the network heals, the agent must be done within this much virtual time."""


class SimCrash(BaseException):
    """The simulation kills the agent here (like SIGKILL, not an error to handle)."""


# --------------------------------------------------------------------------- world


class World:
    """Virtual time and the timeline of what happens when (see the module docstring)."""

    def __init__(self, *, epoch_ms: int = EPOCH_MS) -> None:
        self.epoch_ms = epoch_ms
        self.now_s = 0.0
        self._queue: list[tuple[float, int, Callable[[], Awaitable[None]]]] = []
        self._order = itertools.count()
        self.trace: list[str] = []

    def time_ms(self) -> int:
        return self.epoch_ms + int(self.now_s * 1000)

    def log(self, text: str) -> None:
        if len(self.trace) < TRACE_LINES_MAX:
            self.trace.append(f"{self.now_s:10.3f} {text}")

    def at(self, t_s: float, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` when virtual time reaches ``t_s`` (not before now)."""
        heapq.heappush(self._queue, (max(t_s, self.now_s), next(self._order), action))

    def pending(self) -> int:
        return len(self._queue)

    async def run_until(self, t_s: float, stop_when: Callable[[], bool] | None = None) -> bool:
        """Run every action due up to ``t_s``; stop early once ``stop_when()`` holds.

        Returns whether it stopped early. Time is left at ``t_s``, or at the
        action after which ``stop_when`` held.
        """
        while self._queue and self._queue[0][0] <= t_s:
            if stop_when is not None and stop_when():
                return True
            due, _, action = heapq.heappop(self._queue)
            self.now_s = max(self.now_s, due)
            await action()
        if stop_when is not None and stop_when():
            return True
        self.now_s = max(self.now_s, t_s)
        return False


class VirtualClock:
    """The agent's :class:`~central_sync.agent.timing.Clock` in the simulation."""

    def __init__(self, world: World) -> None:
        self.world = world

    def monotonic(self) -> float:
        return self.world.now_s

    def time_ms(self) -> int:
        return self.world.time_ms()

    async def wait(self, event: asyncio.Event, timeout_s: float) -> bool:
        if event.is_set():
            return True
        return await self.world.run_until(self.world.now_s + max(0.0, timeout_s), event.is_set)


class SimEventLoop(asyncio.SelectorEventLoop):
    """An event loop that runs "executor" work inline, on the loop's own thread.

    The journal and central's SQLite storage hand their blocking work to worker
    threads (``run_in_executor``, ``asyncio.to_thread``). In the simulation that
    work runs right where it is submitted instead: the whole simulation is one
    thread, which makes the order of effects a function of the seed alone (like
    FoundationDB's simulator) and saves a thread hand-off per database call.
    """

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., Any], *args: Any
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.create_future()
        try:
            result = func(*args)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future


def new_sim_loop() -> asyncio.AbstractEventLoop:
    """A :class:`SimEventLoop` (for ``asyncio.Runner(loop_factory=new_sim_loop)``)."""
    return SimEventLoop()


# --------------------------------------------------------------------------- central


class SimCentral:
    """Central's request handling over the real ingest and SQLite storage, without HTTP.

    The routes mirror ``central_sync.central.handlers`` for what the agent calls:
    batches (answer status from the same REFUSAL_STATUS table), heartbeats and
    catalog releases.
    """

    def __init__(self, path: Path, signer: Identity, world: World) -> None:
        self.path = path
        self.signer = signer
        self.world = world
        self.storage: SqliteStorage | None = None
        self.ingestor: Ingestor | None = None
        self.down_until_s = -1.0
        self.restarts = 0

    async def open(self) -> None:
        storage = SqliteStorage(self.path)
        await storage.open()
        await storage.migrate()
        self.storage = storage
        self.ingestor = Ingestor(storage, signer=self.signer, clock_ms=self.world.time_ms)

    async def close(self) -> None:
        if self.storage is not None:
            await self.storage.close()
        self.storage = None
        self.ingestor = None

    async def restart(self, down_s: float) -> None:
        """Close the storage, stay down for ``down_s``, reopen (what a process restart does)."""
        await self.close()
        self.restarts += 1
        self.down_until_s = self.world.now_s + down_s
        self.world.log(f"central restart (down {down_s:.1f} s)")
        self.world.at(self.down_until_s, self.open)

    def up(self) -> bool:
        return self.storage is not None and self.world.now_s >= self.down_until_s

    async def handle(
        self, method: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> Response:
        assert self.storage is not None
        assert self.ingestor is not None
        route = urlsplit(path)
        if method == "POST" and route.path == BATCHES_PATH:
            result = await self.ingestor.ingest(
                body, claimed_terminal_id=headers.get(TERMINAL_HEADER)
            )
            if result.refusal is None:
                return Response(status=200, body=result.answer)
            kind = result.refusal.kind
            retry = {"retry-after": "5"} if kind is RefusalKind.RETRY_LATER else {}
            return Response(status=REFUSAL_STATUS[kind], body=result.answer, headers=retry)
        if method == "POST" and route.path == HEARTBEAT_PATH:
            return await self._heartbeat(body)
        if method == "GET" and route.path == CATALOG_PATH:
            since = int(parse_qs(route.query).get("since", ["0"])[0])
            release = await self.storage.catalog_release_for(since)
            if release is None:
                return Response(status=204)
            version, release_kind, data = release
            return Response(
                status=200,
                body=data,
                headers={
                    "x-lobbypay-catalog-version": str(version),
                    "x-lobbypay-catalog-kind": release_kind,
                },
            )
        return _json(404, {"error": "not-found"})

    async def _heartbeat(self, body: bytes) -> Response:
        assert self.storage is not None
        try:
            terminal_id = protocol.peek_signer_id(body, expected_type=protocol.HEARTBEAT_TYPE)
            terminal = await self.storage.get_terminal(terminal_id)
            if terminal is None:
                return _json(404, {"error": "not-found"})
            beat = protocol.verify_heartbeat(body, terminal.public_key)
        except protocol.SyncProtocolError as exc:
            return _json(400, {"error": "rejected", "message": str(exc)})
        await self.storage.record_heartbeat(
            terminal_id,
            now_ms=self.world.time_ms(),
            queue_depth=beat.queue_depth,
            oldest_pending_age_s=beat.oldest_pending_age_s,
            software_version=beat.software_version,
            catalog_version=beat.catalog_version,
            config_version=beat.config_version,
            health=beat.health,
        )
        return _json(
            200,
            {
                "ok": True,
                "state": terminal.state.value,
                "catalog_version": await self.storage.latest_catalog_version(),
            },
        )


def _json(status: int, value: Mapping[str, Any]) -> Response:
    return Response(
        status=status,
        body=json.dumps(value).encode(),
        headers={"content-type": "application/json"},
    )


# --------------------------------------------------------------------------- network


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkFaults:
    """What the simulated network does to messages (probabilities per message)."""

    drop_request_p: float = 0.0
    drop_response_p: float = 0.0
    duplicate_p: float = 0.0
    """A request is delivered twice."""
    corrupt_p: float = 0.0
    """One byte of a message is flipped."""
    refuse_p: float = 0.0
    """The connection is refused at once (no delivery)."""
    delay_s_max: float = 0.0
    """Each way takes a uniform delay in [0, delay_s_max]; unequal delays reorder."""
    partitions: tuple[tuple[float, float], ...] = ()
    """Virtual-time windows [start, end) in which nothing gets through."""

    def __post_init__(self) -> None:
        for name in ("drop_request_p", "drop_response_p", "duplicate_p", "corrupt_p", "refuse_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability")
        if self.delay_s_max < 0:
            raise ValueError("delay_s_max must not be negative")
        for start, end in self.partitions:
            if not start < end:
                raise ValueError("a partition window must end after it starts")

    def partitioned(self, t_s: float) -> bool:
        return any(start <= t_s < end for start, end in self.partitions)


PERFECT_NETWORK = NetworkFaults()


@dataclass(slots=True)
class _Slot:
    """Where central's answer to one request lands, if it arrives in time."""

    response: Response | None = None
    closed: bool = False


class SimTransport:
    """The agent's :class:`~central_sync.agent.transport.Transport` over the simulated network."""

    def __init__(
        self, world: World, central: SimCentral, rng: random.Random, faults: NetworkFaults
    ) -> None:
        self.world = world
        self.central = central
        self.rng = rng
        self.faults = faults
        self.requests = 0
        self.deliveries = 0

    def _corrupt(self, data: bytes) -> bytes:
        if not data or self.rng.random() >= self.faults.corrupt_p:
            return data
        index = self.rng.randrange(len(data))
        return (
            data[:index] + bytes([data[index] ^ (1 << self.rng.randrange(8))]) + data[index + 1 :]
        )

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float,
        body_bytes_max: int,
    ) -> Response:
        world, faults, rng = self.world, self.faults, self.rng
        self.requests += 1
        number = self.requests
        data = body or b""
        digest = hashlib.sha256(data).hexdigest()[:12]
        start = world.now_s
        world.log(f"#{number} {method} {path} {len(data)}B {digest}")
        if faults.partitioned(start) or rng.random() < faults.refuse_p:
            await world.run_until(start + min(CONNECT_FAIL_S, timeout_s))
            world.log(f"#{number} connection refused")
            raise TransportError(f"{method} {path}: connection refused (simulated)")
        slot = _Slot()
        if rng.random() >= faults.drop_request_p:
            copies = 2 if rng.random() < faults.duplicate_p else 1
            for copy in range(copies):
                delay = rng.uniform(0.0, faults.delay_s_max)
                payload = self._corrupt(data)
                world.at(
                    start + delay,
                    self._delivery(number, copy, method, path, payload, dict(headers or {}), slot),
                )
        else:
            world.log(f"#{number} request lost")
        await world.run_until(start + timeout_s, lambda: slot.response is not None)
        slot.closed = True
        response = slot.response
        if response is None:
            world.log(f"#{number} timeout")
            raise TransportTimeoutError(f"{method} {path}: no answer within {timeout_s} s")
        if len(response.body) > body_bytes_max:
            raise AnswerTooLargeError(f"answer exceeds {body_bytes_max} bytes")
        return response

    def _delivery(
        self,
        number: int,
        copy: int,
        method: str,
        path: str,
        data: bytes,
        headers: dict[str, str],
        slot: _Slot,
    ) -> Callable[[], Awaitable[None]]:
        async def deliver() -> None:
            world, faults, rng = self.world, self.faults, self.rng
            if faults.partitioned(world.now_s) or not self.central.up():
                world.log(f"#{number}.{copy} lost (partition or central down)")
                return
            self.deliveries += 1
            response = await self.central.handle(method, path, data, headers)
            world.log(f"#{number}.{copy} delivered -> {response.status} {_answer_kind(response)}")
            if rng.random() < faults.drop_response_p:
                world.log(f"#{number}.{copy} answer lost")
                return
            answer = Response(
                status=response.status,
                body=self._corrupt(response.body),
                headers=response.headers,
            )
            arrive = world.now_s + rng.uniform(0.0, faults.delay_s_max)

            async def land() -> None:
                if slot.closed or slot.response is not None or faults.partitioned(world.now_s):
                    return
                slot.response = answer

            world.at(arrive, land)

        return deliver

    async def download(
        self, path: str, target: Path, *, timeout_s: float, bytes_max: int
    ) -> Response:
        response = await self.request("GET", path, timeout_s=timeout_s, body_bytes_max=bytes_max)
        if response.status != 200:
            return response
        await asyncio.to_thread(target.write_bytes, response.body)
        return Response(status=200, headers=response.headers)

    async def close(self) -> None:
        return None


TransportFactory = Callable[[World, SimCentral, random.Random, NetworkFaults], SimTransport]
"""Makes the network of a run (tests swap in a misbehaving one)."""


def _answer_kind(response: Response) -> str:
    body = response.body
    if b'"type":"ack"' in body:
        return "ack"
    if b'"type":"refusal"' in body:
        start = body.find(b'"error":"')
        return body[start + 9 : body.find(b'"', start + 9)].decode(errors="replace")
    return "-"


# --------------------------------------------------------------------------- scenario


def fixed_identity(name: str) -> Identity:
    """An Ed25519 identity derived from ``name``: same keys, same bytes, every run."""
    seed = hashlib.sha256(b"lobbypay-simnet/" + name.encode()).digest()
    return Identity(Ed25519PrivateKey.from_private_bytes(seed))


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """Everything a seed decides."""

    seed: int
    faults: NetworkFaults
    bursts: tuple[tuple[float, int], ...]
    """(time, payments) appended together."""
    crashes: tuple[float, ...]
    restarts: tuple[tuple[float, float], ...]
    """(time, seconds down)."""
    heal_s: float
    """When the network becomes perfect and faults stop."""
    config: AgentConfig
    catalog: bool
    """Whether the agent pulls the catalog too (applying one costs ~20 ms: some seeds only)."""

    @classmethod
    def from_seed(cls, seed: int) -> Scenario:
        rng = random.Random(seed)  # noqa: S311 (simulation, not secrets)
        horizon = rng.choice((60.0, 180.0, 600.0))
        partitions: list[tuple[float, float]] = []
        for _ in range(rng.choice((0, 0, 1, 2))):
            begin = rng.uniform(0, horizon)
            partitions.append((begin, begin + rng.uniform(1.0, horizon / 2)))
        faults = NetworkFaults(
            drop_request_p=rng.choice((0.0, 0.05, 0.2, 0.4)),
            drop_response_p=rng.choice((0.0, 0.05, 0.2, 0.4)),
            duplicate_p=rng.choice((0.0, 0.1, 0.3)),
            corrupt_p=rng.choice((0.0, 0.0, 0.05, 0.15)),
            refuse_p=rng.choice((0.0, 0.05, 0.2)),
            delay_s_max=rng.choice((0.01, 0.5, 4.0, 15.0)),
            partitions=tuple(partitions),
        )
        bursts = tuple(
            sorted((rng.uniform(0, horizon), rng.randint(1, 5)) for _ in range(rng.randint(1, 4)))
        )
        crashes = tuple(sorted(rng.uniform(0, horizon) for _ in range(rng.choice((0, 1, 1, 2, 3)))))
        restarts = tuple(
            sorted(
                (rng.uniform(0, horizon), rng.choice((0.0, 2.0, 30.0)))
                for _ in range(rng.choice((0, 0, 1, 2)))
            )
        )
        config = AgentConfig(
            batch_entries_max=rng.choice((1, 2, 3, 5, 8, 64)),
            response_timeout_s=RESPONSE_TIMEOUT_S,
            request_timeout_s=RESPONSE_TIMEOUT_S,
            backoff_initial_s=rng.choice((0.1, 0.5, 2.0)),
            backoff_max_s=rng.choice((5.0, 30.0)),
            idle_poll_interval_s=rng.choice((15.0, 60.0)),
            heartbeat_interval_s=rng.choice((60.0, 300.0)),
            catalog_poll_interval_s=rng.choice((60.0, 600.0)),
            immediate_retries_max=3,
            prefetch=rng.random() < 0.5,
        )
        return cls(
            seed=seed,
            faults=faults,
            bursts=bursts,
            crashes=crashes,
            restarts=restarts,
            heal_s=horizon,
            config=config,
            catalog=rng.random() < 0.1,
        )


@dataclass(slots=True)
class SimReport:
    """What a run did and which invariants failed (empty ``violations``: all held)."""

    seed: int
    violations: list[str] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    entries: int = 0
    payments: int = 0
    requests: int = 0
    deliveries: int = 0
    crashes: int = 0
    restarts: int = 0
    virtual_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        return (
            f"seed={self.seed} entries={self.entries} payments={self.payments} "
            f"requests={self.requests} deliveries={self.deliveries} crashes={self.crashes} "
            f"central_restarts={self.restarts} virtual_s={self.virtual_s:.1f}"
        )


@dataclass(frozen=True, slots=True)
class SimTemplate:
    """A migrated central database with the simulated terminal enrolled, copied per seed."""

    central_db: Path
    central: Identity
    terminal: Identity
    catalog_version: int


async def prepare_template(directory: Path, *, with_catalog: bool = True) -> SimTemplate:
    """Build the template central database once (migrations, enrollment, a catalog)."""
    central = fixed_identity("central")
    terminal = fixed_identity("terminal")
    path = directory / "central-template.db"
    _fresh_file(path)
    storage = SqliteStorage(path)
    await storage.open()
    version = 0
    try:
        await storage.migrate()
        code = hashlib.sha256(b"SIM-CODE-1").hexdigest()
        await storage.add_registration_code(
            code_hash=code,
            location="sim",
            label=None,
            created_ms=EPOCH_MS,
            expires_ms=EPOCH_MS + 10**12,
            actor="simnet",
        )
        await storage.enroll(
            terminal_id=terminal.terminal_id,
            public_key=terminal.public_key_bytes,
            code_hash=code,
            location="sim",
            label="simulated kiosk",
            now_ms=EPOCH_MS,
        )
        if with_catalog:
            from central_sync.catalog.generator import generate_catalog
            from central_sync.catalog.publish import build_snapshot

            version = 1
            release = build_snapshot(
                generate_catalog(7, 3, 2),
                version,
                central,
                published_at_ms=EPOCH_MS,
                expires_at_ms=EPOCH_MS + 400 * 86_400_000,
            )
            await storage.put_catalog_release(
                version=version, kind="snapshot", base_version=None, data=release, now_ms=EPOCH_MS
            )
    finally:
        await storage.close()
    return SimTemplate(central_db=path, central=central, terminal=terminal, catalog_version=version)


def _fresh_file(path: Path) -> None:
    """Make the directory of ``path`` and remove the database there (and its WAL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _copy_db(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal"):
        src = Path(f"{source}{suffix}")
        if src.exists():
            shutil.copyfile(src, Path(f"{target}{suffix}"))


class _Terminal:
    """The journal side of the scenario: what gets appended and what it must hold."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.receipt = 0
        self.intents: dict[str, dict[str, Any]] = {}
        self.open_payments: list[dict[str, Any]] = []

    def next_entries(self) -> list[tuple[str, dict[str, Any]]]:
        """One payment (intent, maybe a result or reversal later) or another kind of entry."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.08:
            return [
                (
                    KIND_METER_READING,
                    {
                        "account": str(rng.randint(10**9, 10**10 - 1)),
                        "meter_id": f"M{rng.randint(10**6, 10**7 - 1)}",
                        "value": rng.randint(0, 10**7),
                        "reading_ts_ms": EPOCH_MS,
                    },
                )
            ]
        if roll < 0.12:
            return [(KIND_DEVICE_EVENT, {"device": "printer", "event": "paper-low"})]
        if roll < 0.22 and self.intents:
            # A retried append of a payment already written: the journal must
            # return the stored entry, central must never see a second payment.
            payment_id = rng.choice(sorted(self.intents))
            return [(KIND_PAYMENT_INTENT, self.intents[payment_id])]
        self.receipt += 1
        intent, result = payment_bodies(rng, self.receipt, gateway=rng.random() < 0.3)
        self.intents[intent["payment_id"]] = intent
        outcome = rng.random()
        if outcome < 0.15:
            return [(KIND_PAYMENT_INTENT, intent)]  # outcome unknown (for now)
        if outcome < 0.3:
            result["outcome"] = "declined"
        entries = [(KIND_PAYMENT_INTENT, intent), (KIND_PAYMENT_RESULT, result)]
        if outcome > 0.95:
            entries.append(
                (KIND_REVERSAL, {"payment_id": intent["payment_id"], "reason": "cancelled"})
            )
        return entries


async def run_simulation(
    seed: int,
    workdir: Path,
    template: SimTemplate,
    *,
    scenario: Scenario | None = None,
    keep_files: bool = False,
    transport: TransportFactory | None = None,
) -> SimReport:
    """Run the scenario of ``seed`` in ``workdir`` and check the invariants."""
    scenario = scenario or Scenario.from_seed(seed)
    rng = random.Random(seed ^ 0x5EED)  # noqa: S311 (simulation, not secrets)
    report = SimReport(seed=seed)
    world = World()
    clock = VirtualClock(world)
    central_path = workdir / "central.db"
    journal_path = workdir / "journal.db"
    catalog_path = workdir / "catalog.db"
    _copy_db(template.central_db, central_path)  # (creates workdir)
    central = SimCentral(central_path, template.central, world)
    await central.open()
    make_transport = transport or SimTransport
    net = make_transport(world, central, random.Random(rng.getrandbits(64)), scenario.faults)  # noqa: S311
    terminal = _Terminal(random.Random(rng.getrandbits(64)))  # noqa: S311
    agent_rng = random.Random(rng.getrandbits(64))  # noqa: S311
    journal = await Journal.open(journal_path, clock_ms=world.time_ms)
    agent: SyncAgent | None = None
    done = False
    try:

        async def append_burst(payments: int) -> None:
            count = 0
            for _ in range(payments):
                for kind, body in terminal.next_entries():
                    await journal.append(kind, body)
                    count += 1
            world.log(f"appended {count} entries")
            if agent is not None:
                agent.wake()

        def schedule_burst(t_s: float, payments: int) -> None:
            world.at(t_s, lambda: append_burst(payments))

        for t_s, payments in scenario.bursts:
            schedule_burst(t_s, payments)

        async def crash() -> None:
            world.log("agent crash")
            raise SimCrash

        for t_s in scenario.crashes:
            world.at(t_s, crash)

        def schedule_restart(t_s: float, down_s: float) -> None:
            world.at(t_s, lambda: central.restart(down_s))

        for t_s, down_s in scenario.restarts:
            schedule_restart(t_s, down_s)

        async def heal() -> None:
            world.log("network healed")
            net.faults = PERFECT_NETWORK

        world.at(scenario.heal_s, heal)

        async def check_quiet() -> None:
            nonlocal done
            if world.now_s >= scenario.heal_s and central.up():
                head_seq, _ = await journal.head()
                if await journal.acknowledged_through() >= head_seq:
                    done = True
            if world.now_s > scenario.heal_s + QUIET_DEADLINE_S:
                done = True
            if done:
                if agent is not None:
                    agent.stop()
                return
            world.at(world.now_s + CHECK_INTERVAL_S, check_quiet)

        world.at(scenario.heal_s, check_quiet)

        # Bounded: each incarnation ends with a crash (a bounded number), a
        # final refusal, or the quiet check's stop.
        for _incarnation in range(len(scenario.crashes) + 2):
            agent = SyncAgent(
                journal=journal,
                signer=template.terminal,
                central_public_key=template.central.public_key_bytes,
                transport=net,
                config=scenario.config,
                clock=clock,
                rng=agent_rng,
                catalog_path=catalog_path if scenario.catalog else None,
                software_version="sim-1",
            )
            try:
                result = await agent.run()
            except Exception as exc:  # a bug in the agent: report it with the seed
                report.violations.append(f"agent raised {type(exc).__name__}: {exc}")
                await agent.close()
                agent = None
                done = True
                break
            except SimCrash:
                report.crashes += 1
                await agent.close()
                agent = None
                await journal.close()
                journal = await Journal.open(journal_path, clock_ms=world.time_ms)
                await _check_ack_safety(journal, central, template, report, "after a crash")
                continue
            await agent.close()
            if result.final is not None:
                report.violations.append(
                    f"agent stopped on a final refusal: {result.final.reason}: "
                    f"{result.final.message}"
                )
            break
        if not done:
            report.violations.append("the simulation ended before the agent was done")
        # Deliveries still in flight after the end (late duplicates) must change nothing.
        world.log("draining late deliveries")
        net.faults = PERFECT_NETWORK
        for _ in range(3):
            try:
                await world.run_until(world.now_s + 2 * max(15.0, RESPONSE_TIMEOUT_S))
                break
            except SimCrash:
                continue
        if not central.up():
            await world.run_until(max(world.now_s, central.down_until_s) + 1.0)
        catalog_version: int | None = None
        if scenario.catalog:
            # Over the healed network one more pull must bring central's catalog.
            last = SyncAgent(
                journal=journal,
                signer=template.terminal,
                central_public_key=template.central.public_key_bytes,
                transport=net,
                config=scenario.config,
                clock=clock,
                rng=agent_rng,
                catalog_path=catalog_path,
            )
            try:
                catalog_version = (await last.pull_catalog()).version
            finally:
                await last.close()
            if catalog_version != template.catalog_version:
                report.violations.append(
                    f"catalog version {catalog_version}, central has {template.catalog_version}"
                )
        await _check_invariants(journal, central, template, terminal, report)
    finally:
        if agent is not None:
            await agent.close()
        await journal.close()
        await central.close()
        report.trace = world.trace
        report.requests = net.requests
        report.deliveries = net.deliveries
        report.restarts = central.restarts
        report.virtual_s = world.now_s
        if not keep_files:
            shutil.rmtree(workdir, ignore_errors=True)
    return report


async def _check_ack_safety(
    journal: Journal, central: SimCentral, template: SimTemplate, report: SimReport, when: str
) -> None:
    """An acknowledged entry is one central holds: acked_through <= central's head."""
    if central.storage is None:
        return
    record = await central.storage.get_terminal(template.terminal.terminal_id)
    acked = await journal.acknowledged_through()
    if record is None or acked > record.head_seq:
        held = None if record is None else record.head_seq
        report.violations.append(f"{when}: journal acked through {acked}, central holds {held}")


async def _check_invariants(
    journal: Journal,
    central: SimCentral,
    template: SimTemplate,
    terminal: _Terminal,
    report: SimReport,
) -> None:
    storage = central.storage
    if storage is None:
        report.violations.append("central is not up at the end")
        return
    violations = report.violations
    head_seq, head_hash = await journal.head()
    entries = await journal.read(1, head_seq + 1) if head_seq else []
    report.entries = len(entries)
    if [e.seq for e in entries] != list(range(1, head_seq + 1)):
        violations.append("the journal does not hold entries 1..head")
    acked = await journal.acknowledged_through()
    if acked != head_seq:
        violations.append(f"journal acknowledged through {acked} of {head_seq}")
    not_acked = [e.seq for e in entries if e.state is not EntryState.ACKNOWLEDGED]
    if not_acked:
        violations.append(f"entries not marked acknowledged: {not_acked[:10]}")
    tid = template.terminal.terminal_id
    record = await storage.get_terminal(tid)
    if record is None:
        violations.append("central lost the terminal")
        return
    if record.state is not TerminalState.ENROLLED:
        violations.append(f"terminal is {record.state.value} at central ({record.state_reason})")
    if (record.head_seq, record.head_hash) != (head_seq, head_hash):
        violations.append(
            f"heads differ: journal {head_seq}, central {record.head_seq} "
            f"(hashes {'equal' if record.head_hash == head_hash else 'differ'})"
        )
    stored = await storage.entry_hashes(tid)
    if [(seq, h) for seq, h, _ in stored] != [(e.seq, e.hash) for e in entries]:
        violations.append(
            f"central holds {len(stored)} entries, journal {len(entries)}: not exactly once"
        )
    intents = [e for e in entries if e.kind == KIND_PAYMENT_INTENT]
    payment_ids = {e.body["payment_id"] for e in intents}
    report.payments = len(payment_ids)
    if len(payment_ids) != len(intents):
        violations.append("the journal holds one payment_id twice")
    counts = await storage.counts()
    if counts.payments != len(payment_ids):
        violations.append(f"central has {counts.payments} payments, journal {len(payment_ids)}")
    duplicates = await storage.duplicates()
    if duplicates:
        violations.append(f"central recorded duplicates: {duplicates[:3]}")
    rows = await storage.export_rows("payments", 0, 2**62)
    central_totals: dict[str, int] = {}
    for row in rows:
        central_totals[row["currency"]] = central_totals.get(row["currency"], 0) + int(
            row["amount_minor"]
        )
    journal_totals: dict[str, int] = {}
    for e in intents:
        currency = str(e.body["currency"])
        journal_totals[currency] = journal_totals.get(currency, 0) + int(e.body["amount_minor"])
    if central_totals != journal_totals:
        violations.append(f"totals differ: central {central_totals}, journal {journal_totals}")
    if sorted(r["payment_id"] for r in rows) != sorted(payment_ids):
        violations.append("central's payments are not the journal's")
    meters = sum(1 for e in entries if e.kind == KIND_METER_READING)
    if counts.meter_readings != meters:
        violations.append(f"central has {counts.meter_readings} meter readings, journal {meters}")
    alarms = await storage.alarms()
    if alarms:
        violations.append(f"central raised alarms: {[a.kind for a in alarms]}")


# --------------------------------------------------------------------------- many seeds


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedOutcome:
    """A picklable digest of one seed's :class:`SimReport` (for worker processes)."""

    seed: int
    violations: tuple[str, ...]
    summary: str
    entries: int
    requests: int
    deliveries: int
    crashes: int
    restarts: int


def run_seeds(seeds: Sequence[int], workdir: str) -> list[SeedOutcome]:
    """Run ``seeds`` one after another on a fresh :class:`SimEventLoop`.

    A plain function of picklable arguments, so a process pool can spread seeds
    over cores. The agent's warnings (every simulated failure logs one) are
    muted while it runs; errors still show.
    """
    base = Path(workdir)

    async def main() -> list[SeedOutcome]:
        template = await prepare_template(base / "template")
        out: list[SeedOutcome] = []
        for seed in seeds:
            try:
                report = await run_simulation(seed, base / f"seed-{seed}", template)
            except Exception as exc:  # the harness itself broke: still name the seed
                report = SimReport(seed=seed, violations=[f"simulation raised {exc!r}"])
            out.append(
                SeedOutcome(
                    seed=seed,
                    violations=tuple(report.violations),
                    summary=report.summary(),
                    entries=report.entries,
                    requests=report.requests,
                    deliveries=report.deliveries,
                    crashes=report.crashes,
                    restarts=report.restarts,
                )
            )
        return out

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with asyncio.Runner(loop_factory=new_sim_loop) as runner:
            return runner.run(main())
    finally:
        logging.disable(previous)
        shutil.rmtree(base / "template", ignore_errors=True)
