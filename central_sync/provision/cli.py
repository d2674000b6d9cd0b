"""`lobbypay provision`, `lobbypay rekey`, `lobbypay decommission` for field technicians.

Only argparse and the standard library are imported here; the steps run from
:mod:`central_sync.provision.provision` and :mod:`central_sync.provision.lifecycle`,
imported when a command runs (``lobbypay --help`` stays fast). Lines for
technicians come in English with Russian alongside.

Exit status: 0 done (or nothing to do); 1 a retryable failure (central
unreachable or busy: run the command again); 2 bad answers, a refusal, or a
problem to fix first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

EXIT_OK = 0
EXIT_RETRYABLE = 1
EXIT_FAILED = 2


def _common(parser: argparse.ArgumentParser) -> None:
    from firmware_config.cli_common import add_config_dir_argument

    add_config_dir_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _unit_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--unit-dir",
        type=Path,
        default=Path("/etc/systemd/system"),
        help="the systemd unit directory to install into / remove from (/etc/systemd/system)",
    )


def add_provision_parser(subparsers: Any) -> None:
    """Register ``lobbypay provision``."""
    p = subparsers.add_parser(
        "provision",
        help="turn this box into an enrolled kiosk or gateway (safe to run again)",
        description="Provision this box: role, devices (serial ports and PC/SC readers are "
        "probed and shown), central URL and pinned key (its fingerprint is shown to compare), "
        "registration code. Makes the identity key once, writes "
        "<config-dir>/override.d/00-provision.toml, enrolls with central, and installs and "
        "enables the role's systemd units. Prompts for what flags and --answers do not give "
        "when run on a terminal (or with --interactive). Running it again changes nothing "
        "that is already done: an enrolled key is never enrolled again or rotated.",
    )
    _common(p)
    p.add_argument("--answers", type=Path, metavar="FILE", help="answer file (TOML)")
    p.add_argument("--role", choices=("kiosk", "gateway"), help="what this box runs")
    p.add_argument("--label", help="name shown to operators (e.g. 'Lenina 5, entrance 2')")
    p.add_argument("--location", help="location id; must match the registration code's")
    p.add_argument("--data-dir", help="journal, catalog and key directory (/var/lib/lobbypay)")
    p.add_argument("--central-url", help="central ledger URL (https://host:port)")
    p.add_argument("--central-key", help="central's public key, 64 hex digits (central init)")
    p.add_argument(
        "--central-key-fingerprint",
        help="refuse unless central's key has this fingerprint (as the central console shows)",
    )
    p.add_argument("--registration-code", help="single-use code from the central operator")
    for name, example in (
        ("payment-terminal", "/dev/ttyUSB0 or tcp://10.0.0.5:20007"),
        ("printer", "/dev/ttyS0"),
        ("card-reader", "a PC/SC reader name"),
        ("scanner", "/dev/ttyACM0"),
    ):
        p.add_argument(
            f"--{name}",
            metavar="DEVICE",
            help=f"auto (default: what answers the probe), none, simulator, or e.g. {example}",
        )
    p.add_argument(
        "--serial-glob",
        action="append",
        metavar="GLOB",
        help="serial ports to probe (repeatable; default /dev/ttyUSB* /dev/ttyACM* /dev/ttyS*)",
    )
    p.add_argument(
        "--scanner-listen-s",
        type=float,
        metavar="S",
        help="listen this long on silent ports for a scan (default 5 when prompting, else 0)",
    )
    p.add_argument("--no-probe", action="store_true", help="do not probe devices")
    p.add_argument(
        "--service-user",
        default="lobbypay",
        help="user the services run as; run as root, provision hands it the data directory "
        "(default lobbypay; empty to leave ownership alone)",
    )
    _unit_dir(p)
    p.add_argument(
        "--units-from", type=Path, help="directory with the unit files (the shipped systemd/)"
    )
    p.add_argument(
        "--no-enable", action="store_true", help="copy the units but do not run systemctl"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--interactive", action="store_true", help="prompt even without a tty")
    mode.add_argument(
        "--non-interactive", action="store_true", help="never prompt; missing answers fail"
    )
    p.set_defaults(func=_provision)


def add_rekey_parser(subparsers: Any) -> None:
    """Register ``lobbypay rekey``."""
    p = subparsers.add_parser(
        "rekey",
        help="replace this terminal's key, with central's agreement",
        description="Make a new identity key, ask central (signed with the old key, with proof "
        "of the new one) to replace the enrolled key, and switch to it only after central's "
        "signed answer verifies. Central keeps the terminal's record and journal chain; the "
        "terminal id changes with the key (ids derive from keys) and the old one is retired. "
        "Restarts the sync agent. Safe to run again after an interruption.",
    )
    _common(p)
    p.add_argument("--no-restart", action="store_true", help="do not restart the sync agent")
    p.set_defaults(func=_rekey)


def add_decommission_parser(subparsers: Any) -> None:
    """Register ``lobbypay decommission``."""
    p = subparsers.add_parser(
        "decommission",
        help="take this terminal out of service: tell central, disable units, delete the key",
        description="Tell central (signed) that this terminal is decommissioned, then disable "
        "and remove its systemd units and delete its identity key and enrollment record. "
        "Refuses while the journal holds entries central has not acknowledged, unless "
        "--force (those entries then never reach central). The journal file is kept.",
    )
    _common(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="decommission even with unsent journal entries (they are lost to central)",
    )
    p.add_argument("--reason", default="", help="why (recorded at central)")
    _unit_dir(p)
    p.add_argument(
        "--no-enable",
        action="store_true",
        help="do not run systemctl (only remove the unit files)",
    )
    p.set_defaults(func=_decommission)


# --- running ---------------------------------------------------------------------


def _fail(exc: Exception, out: TextIO = sys.stderr) -> int:
    from central_sync.provision.answers import AnswersError

    if isinstance(exc, AnswersError):
        print("lobbypay: answers need fixing / ответы нужно исправить:", file=out)
        for problem in exc.problems:
            print(f"  {problem}", file=out)
        print("nothing was changed / ничего не изменено", file=out)
        return EXIT_FAILED
    print(f"lobbypay: {exc}", file=out)
    next_step = getattr(exc, "next_step", "")
    if next_step:
        print(f"  -> next step / что делать: {next_step}", file=out)
    return EXIT_RETRYABLE if getattr(exc, "retryable", False) else EXIT_FAILED


def _quiet_logs() -> None:
    import logging

    # Driver retries during probing are expected; only problems are worth a line.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s %(message)s")


def _provision(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import os

    from central_sync.provision import answers as ans
    from central_sync.provision.provision import (
        Options,
        ProvisionError,
        existing_enrollment,
        key_path_for,
        provision,
    )
    from central_sync.provision.units import UnitError, repo_unit_dir
    from firmware_config.identity import IdentityError
    from firmware_config.loader import CONFIG_DIR_ENV, DEFAULT_CONFIG_DIR

    _quiet_logs()
    config_dir = Path(args.config_dir or os.environ.get(CONFIG_DIR_ENV) or DEFAULT_CONFIG_DIR)
    out = sys.stderr if args.json else sys.stdout
    interactive = args.interactive or (not args.non_interactive and sys.stdin.isatty())
    try:
        given = ans.Answers(
            role=args.role,
            label=args.label,
            location=args.location,
            data_dir=args.data_dir,
            central_url=args.central_url,
            central_public_key=args.central_key,
            central_key_fingerprint=args.central_key_fingerprint,
            registration_code=args.registration_code,
            devices=ans.device_flags(
                {
                    "payment_terminal": args.payment_terminal,
                    "printer": args.printer,
                    "card_reader": args.card_reader,
                    "scanner": args.scanner,
                }
            ),
        )
        if args.answers is not None:
            given = given.merged_over(ans.load_answer_file(args.answers))
        prompter = ans.Prompter(read=sys.stdin.readline, out=out) if interactive else None
        if prompter is not None:
            given = ans.prompt_missing(given, prompter)
        # A registration code is needed only if this box is not enrolled yet.
        enrolled = None
        key_hex = (given.central_public_key or "").strip().lower()
        if len(key_hex) == 64 and given.data_dir is not None:
            with contextlib.suppress(ValueError, ProvisionError):
                enrolled = existing_enrollment(key_path_for(config_dir, given.data_dir), key_hex)
        checked = ans.check(given, need_code=enrolled is None)
        listen = args.scanner_listen_s
        if listen is None:
            listen = 5.0 if prompter is not None else 0.0
        options = Options(
            config_dir=config_dir,
            unit_dir=args.unit_dir,
            units_from=args.units_from or repo_unit_dir(),
            enable_units=not args.no_enable,
            probe=not args.no_probe,
            serial_globs=tuple(args.serial_glob or ()),
            scanner_listen_s=listen,
            service_user=args.service_user,
        )
        _say_central_key(checked, out)
        if checked.role == "kiosk" and options.probe:
            print("Probing devices / Поиск устройств…", file=out)
        report = asyncio.run(
            provision(
                checked,
                options,
                out=out,
                ask_devices=_device_prompts(prompter) if prompter is not None else None,
            )
        )
    except (ans.AnswersError, ProvisionError, IdentityError, UnitError) as exc:
        return _fail(exc)
    _print_summary(report, args.json)
    return EXIT_OK


def _say_central_key(checked: Any, out: TextIO) -> None:
    from firmware_config.identity import public_key_fingerprint

    fingerprint = public_key_fingerprint(bytes.fromhex(checked.central_public_key))
    verdict = (
        "matches --central-key-fingerprint / совпадает"
        if checked.central_key_fingerprint
        else "compare it with central / сверьте с центром"
    )
    print(f"Central key fingerprint / Отпечаток ключа центра: {fingerprint} ({verdict})", file=out)


def _device_prompts(prompter: Any) -> Any:
    from central_sync.provision import answers as ans

    def ask(devices: Any, probed: Any) -> Any:
        from drivers.probe import DeviceKind

        def found(kind: DeviceKind) -> str | None:
            return next((p.path for p in probed.ports if p.kind is kind), None)

        defaults = {
            "payment_terminal": found(DeviceKind.PAYMENT_TERMINAL) or ans.SIMULATOR,
            "printer": found(DeviceKind.PRINTER) or ans.SIMULATOR,
            "scanner": found(DeviceKind.SCANNER) or ans.NONE,
            "card_reader": probed.readers[0] if probed.readers else ans.NONE,
        }
        labels = {
            "payment_terminal": ("Payment terminal", "Платёжный терминал"),
            "printer": ("Receipt printer", "Принтер чеков"),
            "scanner": ("Scanner", "Сканер"),
            "card_reader": ("Card reader (PC/SC)", "Считыватель карт (PC/SC)"),
        }
        chosen = {}
        for name in ans.DEVICE_NAMES:
            value = getattr(devices, name)
            if value != ans.AUTO:
                chosen[name] = value
                continue
            en, ru = labels[name]
            chosen[name] = prompter.ask(en, ru, defaults[name], valid=lambda a: None)
        return ans.Devices(**chosen)

    return ask


def _print_summary(report: Any, as_json: bool) -> None:
    if as_json:
        import json

        print(
            json.dumps(
                {
                    "terminal_id": report.terminal_id,
                    "fingerprint": report.fingerprint,
                    "role": report.role,
                    "label": report.label,
                    "location": report.location,
                    "central_url": report.central_url,
                    "central_fingerprint": report.central_fingerprint,
                    "identity": report.identity,
                    "enrollment": report.enrollment,
                    "config": {"path": str(report.config_path), "changed": report.config_changed},
                    "overridden": list(report.overridden),
                    "devices": {d.name: d.description for d in report.devices},
                    "probe": list(report.probe_lines),
                    "units": {
                        "dir": str(report.units.unit_dir),
                        "units": list(report.units.units),
                        "changed": list(report.units.changed),
                        "systemctl": report.units.systemctl,
                    },
                    "ownership": report.ownership,
                    "changed": report.changed,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    enrolled_ru = "зарегистрирован сейчас" if report.enrollment == "enrolled now" else "уже был"
    lines = [
        ("Terminal id", "Терминал", f"{report.terminal_id} (key {report.fingerprint}, "
         f"{report.identity})"),
        ("Role", "Роль", report.role),
        ("Location", "Место", report.location
         + (f" ({report.label})" if report.label and report.label != report.location else "")),
        ("Central", "Центр", f"{report.central_url} (key {report.central_fingerprint})"),
        ("Enrollment", "Регистрация", f"{report.enrollment} / {enrolled_ru}"),
        ("Configuration", "Настройки",
         f"{report.config_path} ({'written' if report.config_changed else 'unchanged'})"),
    ]  # fmt: skip
    for device in report.devices:
        lines.append((f"Device {device.name}", "Устройство", device.description))
    lines.append(("Service user", "Пользователь службы", report.ownership))
    units = ", ".join(report.units.units)
    lines.append(
        (
            "Units",
            "Службы",
            f"{units} in {report.units.unit_dir} "
            f"({len(report.units.changed)} copied; {report.units.systemctl})",
        )
    )
    print("", flush=True)
    print("Provisioning summary / Итог подготовки терминала")
    for en, ru, value in lines:
        print(f"  {en} / {ru}: {value}")
    for key in report.overridden:
        print(f"  ! overridden / переопределено: {key}")
    if not report.changed:
        print("Nothing changed: this box was provisioned already. / "
              "Ничего не изменено: терминал уже подготовлен.")  # fmt: skip
    else:
        print("Done. / Готово.")


def _settings_or_exit(args: argparse.Namespace) -> Any:
    from firmware_config.cli_common import load_config_or_exit

    return load_config_or_exit(args).settings


def _rekey(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from central_sync.provision.lifecycle import rekey
    from central_sync.provision.provision import ProvisionError
    from central_sync.provision.units import UnitError

    settings = _settings_or_exit(args)
    try:
        report = asyncio.run(rekey(settings, restart=not args.no_restart))
    except (ProvisionError, UnitError) as exc:
        return _fail(exc)
    if args.json:
        print(
            json.dumps(
                {
                    "old_terminal_id": report.old_terminal_id,
                    "new_terminal_id": report.new_terminal_id,
                    "fingerprint": report.fingerprint,
                    "resumed": report.resumed,
                    "sync_agent": report.restart,
                }
            )
        )
        return EXIT_OK
    print(f"Re-keyed / Ключ заменён: {report.old_terminal_id} -> {report.new_terminal_id}")
    print(f"  New key fingerprint / Отпечаток нового ключа: {report.fingerprint}")
    print("  Old key retired at central / Старый ключ выведен из обращения")
    print(f"  Sync agent / Агент синхронизации: {report.restart}")
    return EXIT_OK


def _decommission(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from central_sync.provision.lifecycle import decommission
    from central_sync.provision.provision import ProvisionError
    from central_sync.provision.units import UnitError

    settings = _settings_or_exit(args)
    if args.force:
        print(
            "WARNING: --force: journal entries central has not acknowledged will never reach "
            "it; those payments must be reconciled by hand.\n"
            "ВНИМАНИЕ: --force: неподтверждённые центром записи журнала туда уже не попадут; "
            "эти платежи придётся сверять вручную.",
            file=sys.stderr,
        )
    try:
        report = asyncio.run(
            decommission(
                settings,
                force=args.force,
                reason=args.reason,
                unit_dir=args.unit_dir,
                disable_units=not args.no_enable,
            )
        )
    except (ProvisionError, UnitError) as exc:
        return _fail(exc)
    if args.json:
        print(
            json.dumps(
                {
                    "terminal_id": report.terminal_id,
                    "unsent_entries": report.unsent_entries,
                    "forced": report.forced,
                    "units_removed": list(report.units.changed),
                    "systemctl": report.units.systemctl,
                    "removed": list(report.removed),
                }
            )
        )
        return EXIT_OK
    print(f"Decommissioned / Выведен из эксплуатации: {report.terminal_id}")
    if report.unsent_entries:
        print(f"  Unsent entries discarded / Неотправленных записей: {report.unsent_entries}")
    print(
        f"  Units / Службы: {', '.join(report.units.changed) or '-'} removed "
        f"({report.units.systemctl})"
    )
    print(f"  Removed / Удалено: {', '.join(report.removed) or '-'}")
    print("  The journal is kept for audit / Журнал сохранён для проверки")
    return EXIT_OK
