"""`lobbypay sync ...`: run the sync agent, flush once, or show where syncing stands.

Only argparse and the standard library are imported here; the agent, the
journal and aiohttp are imported when a command runs (``lobbypay --help`` stays
fast). Lines for technicians come in Russian and English (the locale decides,
see ``firmware_config.cli_common.language``).

Exit status: 0 ok; 1 a retryable failure (central unreachable, busy, timeout);
2 a final refusal, a refused catalog, or bad configuration.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from central_sync.agent import SyncAgent
    from central_sync.journal import Journal
    from firmware_config.settings import Settings

EXIT_OK = 0
EXIT_RETRYABLE = 1
EXIT_FINAL = 2
STOP_GRACE_S = 10.0
"""After SIGTERM, how long the step in flight may take before it is cancelled."""

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "not_configured": "central is not configured: set {key} (lobbypay config show central)",
        "flushed": "acknowledged through {acked} of {head} "
        "({entries} entries in {batches} batches)",
        "retryable": "not everything was sent ({reason}): {message}; it will be retried",
        "final": "central refused this terminal ({reason}): {advice}",
        "catalog_ok": "catalog version {version}",
        "catalog_applied": "catalog updated to version {version}",
        "catalog_refused": "catalog release refused ({reason}), version {version} kept: {message}",
        "catalog_failed": "catalog not checked: {message}",
        "heartbeat_failed": "heartbeat not delivered: {message}",
        "stopped": "sync agent stopped",
        "no_journal": "no journal at {path}",
        "queue": "pending entries: {depth}",
        "oldest": "oldest pending entry: {age} s old",
        "acked": "acknowledged through seq {acked} of {head}",
        "last_ack": "last ack: seq {seq}, {ago} s ago",
        "no_ack": "last ack: none recorded",
        "last_error": "last failure: {reason}: {message} ({ago} s ago)",
        "final_refusal": "STOPPED: {reason}: {message}",
        "catalog": "catalog: version {version}, {age} s old{stale}",
        "catalog_stale": ", EXPIRED",
        "no_catalog": "catalog: none yet",
        "catalog_error": "catalog problem: {reason}: {message}",
        "config_ok": "configuration bundle version {version}",
        "config_error": "configuration bundle problem: {reason}: {message}",
        "config_refused": "configuration bundle {kind} ({reason}), version {version} kept: "
        "{message}",
    },
    "ru": {
        "not_configured": "центр не настроен: задайте {key} (lobbypay config show central)",
        "flushed": "подтверждено до {acked} из {head} ({entries} записей в {batches} пакетах)",
        "retryable": "отправлено не всё ({reason}): {message}; будет повторено",
        "final": "центр отклонил терминал ({reason}): {advice}",
        "catalog_ok": "каталог версии {version}",
        "catalog_applied": "каталог обновлён до версии {version}",
        "catalog_refused": "выпуск каталога отклонён ({reason}), оставлена версия {version}: "
        "{message}",
        "catalog_failed": "каталог не проверен: {message}",
        "heartbeat_failed": "сигнал состояния не доставлен: {message}",
        "stopped": "агент синхронизации остановлен",
        "no_journal": "журнала нет: {path}",
        "queue": "записей в очереди: {depth}",
        "oldest": "старейшей неподтверждённой записи: {age} с",
        "acked": "подтверждено до записи {acked} из {head}",
        "last_ack": "последнее подтверждение: запись {seq}, {ago} с назад",
        "no_ack": "последнее подтверждение: нет",
        "last_error": "последний сбой: {reason}: {message} ({ago} с назад)",
        "final_refusal": "ОСТАНОВЛЕН: {reason}: {message}",
        "catalog": "каталог: версия {version}, возраст {age} с{stale}",
        "catalog_stale": ", ИСТЁК",
        "no_catalog": "каталог: ещё нет",
        "catalog_error": "проблема каталога: {reason}: {message}",
        "config_ok": "пакет настроек версии {version}",
        "config_error": "проблема пакета настроек: {reason}: {message}",
        "config_refused": "пакет настроек не применён ({kind}, {reason}), оставлена версия "
        "{version}: {message}",
    },
}


def _say(message: str, /, **fields: object) -> str:
    from firmware_config.cli_common import language

    return MESSAGES[language()][message].format(**fields)


def _config_dir(parser: argparse.ArgumentParser) -> None:
    from firmware_config.cli_common import add_config_dir_argument

    add_config_dir_argument(parser)


def add_sync_parser(subparsers: Any) -> None:
    """Register ``lobbypay sync`` and its subcommands."""
    parser = subparsers.add_parser(
        "sync",
        help="forward the journal to central and pull the catalog",
        description="The sync agent: uploads the journal to the central ledger in signed "
        "batches (entries are acknowledged only after central's signed ack is verified), "
        "pulls signed catalog releases and sends heartbeats.",
    )
    parser.set_defaults(func=lambda args: _usage(parser))
    sub = parser.add_subparsers(dest="sync_command", metavar="SUBCOMMAND")

    p = sub.add_parser(
        "run",
        help="run the sync agent until SIGTERM",
        description="Run the sync agent as a daemon: upload pending entries as soon as "
        "central can be reached (exponential backoff with jitter between failures), pull "
        "the catalog and configuration bundles and send heartbeats. Stops cleanly on "
        "SIGTERM or SIGINT (exit 0); "
        "exits 2 when central refuses the terminal for good (revoked, quarantined, "
        "unknown).",
    )
    _config_dir(p)
    p.set_defaults(func=_run)

    p = sub.add_parser(
        "once",
        help="flush what is pending and pull the catalog once",
        description="Upload everything pending now, pull the catalog and central's signed "
        "configuration bundle once and send one heartbeat, without waiting between failures. "
        "Exit 0 when every entry is acknowledged, 1 on a retryable failure (central "
        "unreachable or busy), 2 on a final refusal, a refused catalog release, or a "
        "configuration bundle refused or rolled back.",
    )
    _config_dir(p)
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=_once)

    p = sub.add_parser(
        "status",
        help="queue depth, oldest pending age, last ack, catalog version and age",
        description="Show the journal's queue (entries not yet acknowledged by central and "
        "the oldest one's age), the last verified ack, the last failure or final refusal, "
        "and the local catalog's version and age. Exit 2 when there is a problem to act "
        "on (a final refusal, a refused or expired catalog, no journal).",
    )
    _config_dir(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_status)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_FINAL


def _software_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lobbypay")
    except PackageNotFoundError:
        return "unknown"


def _settings(args: argparse.Namespace) -> Settings:
    from firmware_config.cli_common import load_config_or_exit

    return load_config_or_exit(args).settings


def _setup(args: argparse.Namespace) -> _Setup:
    from firmware_config.cli_common import load_config_or_exit

    loaded = load_config_or_exit(args)
    return _Setup(loaded.settings, config_dir=loaded.config_dir)


class _Setup:
    """What `run` and `once` need, built from the settings (or an exit status)."""

    def __init__(self, settings: Settings, config_dir: Path | None = None) -> None:
        self.settings = settings
        self.config_dir = config_dir

    def check(self) -> int | None:
        import sys

        central = self.settings.central
        for key, value in (
            ("central.url", central.url),
            ("central.public_key", central.public_key),
        ):
            if not value:
                print(_say("not_configured", key=key), file=sys.stderr)
                return EXIT_FINAL
        return None

    async def open(self) -> tuple[Journal, SyncAgent]:
        from central_sync.agent import STATE_FILE_NAME, AgentConfig, AiohttpTransport, SyncAgent
        from central_sync.catalog.store import CATALOG_FILE_NAME
        from central_sync.journal import open_from_settings
        from firmware_config.identity import load_identity

        settings = self.settings
        identity = load_identity(settings.identity_key_path)
        key = settings.central.public_key_bytes
        assert key is not None  # check() ran first
        version = _software_version()
        transport = AiohttpTransport(
            settings.central.url,
            connect_timeout_s=settings.central.request_timeout_s,
            ca_file=settings.sync.tls_ca_file,
            user_agent=f"lobbypay-sync/{version}",
        )
        journal = await open_from_settings(settings)
        data_dir = settings.terminal.data_dir
        bundles = None
        if self.config_dir is not None:
            from central_sync.agent.config_bundle import ConfigBundleApplier

            # Central's configuration bundles become the central.d/ layer of
            # this very configuration directory.
            bundles = ConfigBundleApplier(
                config_dir=self.config_dir,
                central_public_key=key,
                location=settings.terminal.location,
            )
        agent = SyncAgent(
            journal=journal,
            signer=identity,
            central_public_key=key,
            transport=transport,
            config=AgentConfig.from_settings(settings),
            catalog_path=data_dir / CATALOG_FILE_NAME,
            state_path=data_dir / STATE_FILE_NAME,
            software_version=version,
            config_bundles=bundles,
        )
        return journal, agent


def _run_async(body: Any) -> int:
    import asyncio
    import sys

    from central_sync.agent import SyncAgentError
    from central_sync.journal import JournalError
    from firmware_config.identity import IdentityError

    try:
        result: int = asyncio.run(body())
    except IdentityError as exc:
        print(f"lobbypay sync: {exc}", file=sys.stderr)
        if exc.next_step:
            print(f"  -> {exc.next_step}", file=sys.stderr)
        return EXIT_FINAL
    except (SyncAgentError, JournalError) as exc:
        print(f"lobbypay sync: {exc}", file=sys.stderr)
        return EXIT_FINAL
    return result


def _sd_notify(state: str) -> None:
    """Tell systemd (``Type=notify``, sd_notify(3)) our state, if it is listening."""
    import os
    import socket

    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        pass  # systemd is not listening; nothing to tell


def _watchdog_interval_s() -> float | None:
    import os

    usec = os.environ.get("WATCHDOG_USEC", "")
    return int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else None


def _run(args: argparse.Namespace) -> int:
    import logging

    setup = _setup(args)
    problem = setup.check()
    if problem is not None:
        return problem
    logging.basicConfig(
        level=setup.settings.logging.level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )

    async def body() -> int:
        import asyncio
        import contextlib
        import signal
        import sys

        journal, agent = await setup.open()
        loop = asyncio.get_running_loop()
        task = loop.create_task(agent.run(), name="sync-agent")

        def on_signal() -> None:
            agent.stop()
            # The step in flight may wait for central; bound how long stopping takes.
            loop.call_later(STOP_GRACE_S, task.cancel)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)

        async def watchdog(interval_s: float) -> None:
            while True:
                _sd_notify("WATCHDOG=1")
                await asyncio.sleep(interval_s)

        interval = _watchdog_interval_s()
        pinger = loop.create_task(watchdog(interval)) if interval else None
        _sd_notify("READY=1")
        try:
            try:
                report = await task
            except asyncio.CancelledError:
                report = None
        finally:
            _sd_notify("STOPPING=1")
            if pinger is not None:
                pinger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pinger
            await agent.close()
            await agent.transport.close()
            await journal.close()
        if report is not None and report.final is not None:
            advice = report.final.messages
            print(
                _say("final", reason=report.final.reason, advice=advice.get("en", "")),
                file=sys.stderr,
            )
            print(f"  {advice.get('ru', '')}", file=sys.stderr)
            return EXIT_FINAL
        print(_say("stopped"), file=sys.stderr)
        return EXIT_OK

    return _run_async(body)


def _once(args: argparse.Namespace) -> int:
    setup = _setup(args)
    problem = setup.check()
    if problem is not None:
        return problem

    async def body() -> int:
        import json
        import sys

        from central_sync.agent import UploadKind

        journal, agent = await setup.open()
        try:
            flush = await agent.flush()
            catalog = await agent.pull_catalog()
            bundle = await agent.pull_config()
            beat = await agent.send_heartbeat()
        finally:
            await agent.close()
            await agent.transport.close()
            await journal.close()
        last = flush.last
        config_refused = bundle is not None and bundle.kind in ("refused", "rolled-back")
        if last.kind is UploadKind.FINAL or catalog.refused is not None or config_refused:
            status = EXIT_FINAL
        elif not flush.complete or catalog.error is not None:
            status = EXIT_RETRYABLE
        else:
            status = EXIT_OK
        if args.json:
            print(
                json.dumps(
                    {
                        "exit_status": status,
                        "acknowledged_through": flush.acknowledged_through,
                        "head_seq": flush.head_seq,
                        "entries_acknowledged": flush.entries_acknowledged,
                        "batches": flush.batches,
                        "upload": {
                            "outcome": last.kind.value,
                            "reason": last.reason,
                            "message": last.message,
                            "advice": dict(last.messages),
                        },
                        "catalog": {
                            "version": catalog.version,
                            "applied": list(catalog.applied),
                            "refused": None
                            if catalog.refused is None
                            else {
                                "reason": catalog.refused.reason,
                                "message": catalog.refused.message,
                            },
                            "error": catalog.error,
                        },
                        "heartbeat": {"delivered": beat.delivered, "error": beat.error},
                        "config": None
                        if bundle is None
                        else {
                            "outcome": bundle.kind,
                            "version": bundle.version,
                            "offered_version": bundle.offered_version,
                            "reason": bundle.reason,
                            "message": bundle.message,
                        },
                    },
                    ensure_ascii=False,
                    indent=2,
                )
            )
            return status
        out = sys.stdout
        print(
            _say(
                "flushed",
                acked=flush.acknowledged_through,
                head=flush.head_seq,
                entries=flush.entries_acknowledged,
                batches=flush.batches,
            ),
            file=out,
        )
        if last.kind is UploadKind.FINAL:
            from firmware_config.cli_common import language

            advice = last.messages.get(language(), last.messages.get("en", ""))
            print(_say("final", reason=last.reason, advice=advice), file=sys.stderr)
        elif not flush.complete:
            print(_say("retryable", reason=last.reason, message=last.message), file=sys.stderr)
        if catalog.refused is not None:
            print(
                _say(
                    "catalog_refused",
                    reason=catalog.refused.reason,
                    version=catalog.version,
                    message=catalog.refused.message,
                ),
                file=sys.stderr,
            )
        elif catalog.error is not None:
            print(_say("catalog_failed", message=catalog.error), file=sys.stderr)
        elif catalog.applied:
            print(_say("catalog_applied", version=catalog.version), file=out)
        else:
            print(_say("catalog_ok", version=catalog.version), file=out)
        if bundle is not None and bundle.problem:
            print(
                _say(
                    "config_refused",
                    kind=bundle.kind,
                    reason=bundle.reason,
                    version=bundle.version,
                    message=bundle.message,
                ),
                file=sys.stderr,
            )
        elif bundle is not None and bundle.version:
            print(_say("config_ok", version=bundle.version), file=out)
        if not beat.delivered:
            print(_say("heartbeat_failed", message=beat.error), file=sys.stderr)
        return status

    return _run_async(body)


def _status(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import sys
    import time

    from central_sync.agent.errors import StateFileError
    from central_sync.agent.state import STATE_FILE_NAME, load_state
    from central_sync.catalog.errors import CatalogError
    from central_sync.catalog.store import CATALOG_FILE_NAME, CatalogStore
    from central_sync.journal import Journal, JournalError

    settings = _settings(args)
    data_dir = settings.terminal.data_dir
    now_ms = time.time_ns() // 1_000_000
    problems: list[str] = []
    report: dict[str, Any] = {"journal": None, "agent": None, "catalog": None}

    journal_path = settings.journal_path
    if not journal_path.exists():
        problems.append(_say("no_journal", path=journal_path))
    else:

        async def read_journal() -> dict[str, Any]:
            journal = await Journal.open(journal_path, check_tail=False)
            try:
                stats = await journal.stats()
            finally:
                await journal.close()
            by_state = stats.entries_by_state
            return {
                "head_seq": stats.head_seq,
                "acknowledged_through": stats.acknowledged_through,
                "queue_depth": by_state.get("pending", 0) + by_state.get("sent", 0),
                "oldest_pending_age_s": None
                if stats.oldest_pending_age_s is None
                else int(stats.oldest_pending_age_s),
            }

        try:
            report["journal"] = asyncio.run(read_journal())
        except JournalError as exc:
            problems.append(str(exc))

    try:
        state = load_state(data_dir / STATE_FILE_NAME)
    except StateFileError as exc:
        problems.append(str(exc))
        state = None
    if state is not None:
        report["agent"] = state.to_json()
        if state.final_refusal is not None:
            problems.append(
                _say(
                    "final_refusal",
                    reason=state.final_refusal.reason,
                    message=state.final_refusal.message,
                )
            )

    catalog_path = data_dir / CATALOG_FILE_NAME
    if catalog_path.exists():
        try:
            with CatalogStore.open(catalog_path, readonly=True) as store:
                status = store.status(now_ms)
            report["catalog"] = {
                "version": status.version,
                "accounts": status.accounts,
                "published_at_ms": status.published_at_ms,
                "expires_at_ms": status.expires_at_ms,
                "age_s": int(status.age_s),
                "stale": status.stale,
            }
            if status.stale and status.version:
                problems.append(
                    _say(
                        "catalog",
                        version=status.version,
                        age=int(status.age_s),
                        stale=_say("catalog_stale"),
                    )
                )
        except CatalogError as exc:
            problems.append(str(exc))
    if state is not None and state.catalog_error is not None:
        problems.append(
            _say(
                "catalog_error",
                reason=state.catalog_error.reason,
                message=state.catalog_error.message,
            )
        )
    if state is not None and state.config_error is not None:
        problems.append(
            _say(
                "config_error",
                reason=state.config_error.reason,
                message=state.config_error.message,
            )
        )
    report["problems"] = problems

    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return EXIT_FINAL if problems else EXIT_OK
    out = sys.stdout
    j = report["journal"]
    if j is not None:
        print(_say("queue", depth=j["queue_depth"]), file=out)
        if j["oldest_pending_age_s"] is not None:
            print(_say("oldest", age=j["oldest_pending_age_s"]), file=out)
        print(_say("acked", acked=j["acknowledged_through"], head=j["head_seq"]), file=out)
    if state is not None and state.last_ack_seq is not None and state.last_ack_ms is not None:
        ago = max(0, (now_ms - state.last_ack_ms) // 1000)
        print(_say("last_ack", seq=state.last_ack_seq, ago=ago), file=out)
    else:
        print(_say("no_ack"), file=out)
    if state is not None and state.last_error is not None:
        ago = max(0, (now_ms - state.last_error.at_ms) // 1000)
        print(
            _say(
                "last_error",
                reason=state.last_error.reason,
                message=state.last_error.message,
                ago=ago,
            ),
            file=out,
        )
    c = report["catalog"]
    if c is not None and c["version"]:
        stale = _say("catalog_stale") if c["stale"] else ""
        print(_say("catalog", version=c["version"], age=c["age_s"], stale=stale), file=out)
    else:
        print(_say("no_catalog"), file=out)
    for problem in problems:
        print(f"! {problem}", file=sys.stderr)
    return EXIT_FINAL if problems else EXIT_OK
