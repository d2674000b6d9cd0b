"""`lobbypay provision`: from a blank box to an enrolled terminal, safely re-runnable.

Theory of operation
-------------------
The steps, in order; each one is idempotent, so running provision again after a
failure (or on a box that is done) finishes the job or changes nothing:

1. **Answers** (:mod:`~central_sync.provision.answers`) are checked before
   anything changes; the central key's fingerprint is shown for comparing with
   central, and checked when ``--central-key-fingerprint`` is given.
2. **Devices**: serial ports and PC/SC readers are probed
   (:mod:`drivers.probe`) for the kiosk role; what answered is shown, and each
   ``auto`` choice takes the first device of its kind.
3. **Configuration**: ``<config_dir>/override.d/00-provision.toml`` is written
   atomically (only provisioning writes it; a technician's ``local.toml`` still
   wins) and the whole configuration is validated; a file that does not
   validate is put back as it was.
4. **Identity**: the terminal's Ed25519 key is made once
   (:func:`firmware_config.identity.generate_identity`) and never rotated here.
5. **Enrollment**: if ``enrollment.json`` beside the key verifies (central's
   signed answer for this very key, see :mod:`~central_sync.provision.enrollment`)
   the terminal is enrolled already and nothing is sent; otherwise a signed
   enrollment request goes to central with the registration code.
6. **Ownership**: run as root, the data directory (journal, catalog, the key
   and its record) and ``<config_dir>/central.d`` (where the sync agent writes
   central's bundles) are handed to the service user (``--service-user``,
   ``lobbypay``), because the services refuse a key they do not own.
7. **Units**: the role's systemd units are copied into the unit directory and
   enabled (:mod:`~central_sync.provision.units`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from central_sync.agent.files import remove_file, to_toml, write_atomic
from central_sync.provision import answers as ans
from central_sync.provision.enrollment import (
    EnrollmentRecord,
    EnrollmentRecordError,
    load_record,
    record_path,
    save_record,
)
from central_sync.provision.units import UnitReport, install_units

logger = logging.getLogger(__name__)

PROVISION_FILE = Path("override.d") / "00-provision.toml"
CENTRAL_DIR = "central.d"
OWNED_ENTRIES_MAX = 100_000
"""Most files handed over to the service user in one run (a bound on the walk)."""
PROVISION_HEADER = (
    "Written by `lobbypay provision`; running provision again rewrites this file.\n"
    "Your own changes belong in local.toml, which wins over this file."
)


class ProvisionError(RuntimeError):
    """A step failed; ``retryable`` says whether running provision again may help."""

    def __init__(self, message: str, *, next_step: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.next_step = next_step
        self.retryable = retryable


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """How provisioning runs (everything but the answers)."""

    config_dir: Path
    unit_dir: Path
    units_from: Path
    enable_units: bool = True
    probe: bool = True
    serial_globs: tuple[str, ...] = ()
    scanner_listen_s: float = 0.0
    pcsc_timeout_s: float = 3.0
    request_timeout_s: float = 30.0
    service_user: str = "lobbypay"
    """Who the services run as; owns the data directory when provisioning runs as root."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceChoice:
    """One device as configured, and how to say it."""

    name: str
    settings: dict[str, str]
    description: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """What provisioning found and did (the summary is printed from this)."""

    terminal_id: str
    fingerprint: str
    role: str
    label: str
    location: str
    central_url: str
    central_fingerprint: str
    identity: str
    """"created" or "kept"."""
    enrollment: str
    """"enrolled now" or "already enrolled"."""
    config_path: Path
    config_changed: bool
    overridden: tuple[str, ...]
    """Provisioned keys that a later layer (local.toml, the environment) overrides."""
    devices: tuple[DeviceChoice, ...]
    probe_lines: tuple[str, ...]
    units: UnitReport
    ownership: str
    """Who owns the data directory now, or why it was left alone."""

    @property
    def changed(self) -> bool:
        return (
            self.config_changed
            or self.identity == "created"
            or self.enrollment == "enrolled now"
            or bool(self.units.changed)
        )


@dataclass(slots=True)
class _Probed:
    ports: list[Any] = field(default_factory=list)
    readers: tuple[str, ...] = ()
    reader_error: str | None = None
    lines: list[str] = field(default_factory=list)


def hand_over(directories: Sequence[Path], user: str) -> str:
    """Make ``user`` own ``directories`` and what is in them (only as root); say what happened."""
    import os
    import pwd

    if not user:
        return "left as it is (no --service-user)"
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        return f"left as it is (not root: the services must run as {me})"
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return (
            f"left to root: there is no user {user!r} (create it with "
            f"`useradd --system {user}` and run provision again)"
        )
    count = 0
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)
        for root, dirs, files in os.walk(directory):
            for name in (root, *(os.path.join(root, f) for f in (*dirs, *files))):
                os.chown(name, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
                count += 1
                if count > OWNED_ENTRIES_MAX:
                    raise ProvisionError(f"more than {OWNED_ENTRIES_MAX} files under {directory}")
    return f"{user} ({', '.join(str(d) for d in directories)})"


def key_path_for(config_dir: Path, data_dir: str) -> Path:
    """The identity key path: the configured one if set, else under ``data_dir``."""
    from firmware_config.loader import ConfigError, load_config

    with contextlib.suppress(ConfigError):
        configured = load_config(config_dir).settings.identity.key_path
        if configured is not None:
            return configured
    return Path(data_dir) / "identity" / "ed25519.key"


def existing_enrollment(key_path: Path, central_key_hex: str) -> EnrollmentRecord | None:
    """The verified record of the key at ``key_path``, if the key and record agree."""
    from firmware_config.identity import IdentityError, load_identity

    try:
        record = load_record(
            record_path(key_path), central_public_key=bytes.fromhex(central_key_hex)
        )
    except EnrollmentRecordError as exc:
        raise ProvisionError(
            str(exc), next_step="decommission the terminal, or remove the record and enroll again"
        ) from None
    if record is None:
        return None
    try:
        identity = load_identity(key_path)
    except IdentityError:
        return None
    return record if record.terminal_id == identity.terminal_id else None


async def probe_devices(options: Options, devices: ans.Devices, out: TextIO) -> _Probed:
    """Probe what the choices leave to ``auto`` and print what answered."""
    from drivers import probe

    found = _Probed()
    wants_serial = any(
        getattr(devices, n) == ans.AUTO for n in ("payment_terminal", "printer", "scanner")
    )
    if wants_serial and options.probe:
        globs = options.serial_globs or probe.DEFAULT_SERIAL_GLOBS
        if options.scanner_listen_s > 0:
            out.write(
                f"Scan any code on the scanner in the next {options.scanner_listen_s:g} s per port"
                " / Отсканируйте любой код в течение этого времени\n"
            )
        found.ports = await probe.probe_serial(
            globs, probe.ProbeTimeouts(scanner_listen_s=options.scanner_listen_s)
        )
        for port in found.ports:
            found.lines.append(f"{port.path}: {port.kind.value} — {port.detail}")
        if not found.ports:
            found.lines.append(f"no serial ports match {' '.join(globs)}")
    if devices.card_reader == ans.AUTO and options.probe:
        readers = await probe.list_pcsc_readers(options.pcsc_timeout_s)
        found.readers, found.reader_error = readers.readers, readers.error
        if readers.error:
            found.lines.append(f"PC/SC: {readers.error}")
        for name in readers.readers:
            found.lines.append(f"PC/SC reader: {name}")
        if not readers.readers and not readers.error:
            found.lines.append("PC/SC: no readers")
    for line in found.lines:
        out.write(f"  {line}\n")
    return found


def previous_devices(config_dir: Path) -> dict[str, dict[str, str]]:
    """The device settings the last provisioning run wrote (empty if none or unreadable)."""
    import tomllib

    try:
        data = tomllib.loads((config_dir / PROVISION_FILE).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    table = data.get("devices")
    if not isinstance(table, dict):
        return {}
    return {
        name: {k: v for k, v in value.items() if isinstance(v, str)}
        for name, value in table.items()
        if isinstance(value, dict) and isinstance(value.get("driver"), str)
    }


def _describe(settings: dict[str, str]) -> str:
    if "url" in settings:
        return settings["url"]
    if "reader_name" in settings:
        return f"PC/SC {settings['reader_name']}"
    return settings["driver"]


def choose_devices(
    role: str,
    devices: ans.Devices,
    probed: _Probed,
    previous: dict[str, dict[str, str]] | None = None,
) -> tuple[DeviceChoice, ...]:
    """Driver settings for each device; AnswersError if the kiosk lacks one it needs.

    An ``auto`` device that the probe did not find this time keeps what the last
    run configured (a busy terminal or an idle scanner must not undo a good
    provisioning when it is run again).
    """
    if role != "kiosk":
        return ()
    from drivers.probe import DeviceKind

    previous = previous or {}

    def first(kind: DeviceKind) -> str | None:
        return next((p.path for p in probed.ports if p.kind is kind and p.answered), None)

    problems: list[str] = []
    choices: list[DeviceChoice] = []
    serial = {
        "payment_terminal": (DeviceKind.PAYMENT_TERMINAL, "zvt", False),
        "printer": (DeviceKind.PRINTER, "escpos", False),
        "scanner": (DeviceKind.SCANNER, "serial", True),
    }
    for name, (kind, driver, optional) in serial.items():
        value = getattr(devices, name)
        if value == ans.AUTO and first(kind) is None and name in previous:
            kept = previous[name]
            choices.append(
                DeviceChoice(name=name, settings=kept, description=f"{_describe(kept)} (kept)")
            )
            continue
        if value == ans.AUTO:
            path = first(kind)
            if path is None and optional:
                value = ans.NONE
            elif path is None:
                problems.append(
                    f"devices.{name}: nothing answered as a {kind.value.replace('_', ' ')}; "
                    f"connect it and run again, or name it with --{name.replace('_', '-')} "
                    "DEVICE (or 'simulator' for a demo box)"
                )
                continue
            else:
                value = path
        if value == ans.NONE:
            if not optional:
                problems.append(f"devices.{name}: a kiosk needs one (a device or 'simulator')")
                continue
            choices.append(DeviceChoice(name=name, settings={"driver": "none"}, description="none"))
        elif value == ans.SIMULATOR:
            choices.append(
                DeviceChoice(name=name, settings={"driver": "simulator"}, description="simulator")
            )
        else:
            choices.append(
                DeviceChoice(
                    name=name, settings={"driver": driver, "url": value}, description=value
                )
            )
    reader = devices.card_reader
    if reader == ans.AUTO and not probed.readers and "card_reader" in previous:
        kept = previous["card_reader"]
        choices.append(
            DeviceChoice(name="card_reader", settings=kept, description=f"{_describe(kept)} (kept)")
        )
        reader = ""
    elif reader == ans.AUTO:
        reader = probed.readers[0] if probed.readers else ans.NONE
    if reader in (ans.NONE, ans.SIMULATOR):
        choices.append(
            DeviceChoice(name="card_reader", settings={"driver": reader}, description=reader)
        )
    elif reader:
        choices.append(
            DeviceChoice(
                name="card_reader",
                settings={"driver": "pcsc", "reader_name": reader},
                description=f"PC/SC {reader}",
            )
        )
    if problems:
        raise ans.AnswersError(problems)
    return tuple(choices)


def config_document(answers: ans.Answers, devices: Sequence[DeviceChoice]) -> dict[str, Any]:
    """The provisioned settings as nested tables."""
    assert answers.role
    assert answers.location is not None
    assert answers.data_dir
    document: dict[str, Any] = {
        "terminal": {
            "role": answers.role,
            "label": answers.label or "",
            "location": answers.location,
            "data_dir": answers.data_dir,
        },
        "central": {"url": answers.central_url, "public_key": answers.central_public_key},
    }
    if devices:
        document["devices"] = {choice.name: dict(choice.settings) for choice in devices}
    return document


def _leaf_keys(document: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in document.items():
        if isinstance(value, dict):
            out.extend(_leaf_keys(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", value))
    return out


def write_config(config_dir: Path, document: dict[str, Any]) -> tuple[bool, tuple[str, ...]]:
    """Write the provision layer and validate; restore it on failure. (changed, overridden)."""
    from firmware_config.loader import ConfigError, load_config
    from firmware_config.settings import effective_values

    path = config_dir / PROVISION_FILE
    try:
        previous: bytes | None = path.read_bytes()
    except FileNotFoundError:
        previous = None
    changed = write_atomic(path, to_toml(document, header=PROVISION_HEADER).encode("utf-8"))
    try:
        loaded = load_config(config_dir)
    except ConfigError as exc:
        if changed:
            if previous is None:
                remove_file(path)
            else:
                write_atomic(path, previous)
        raise ProvisionError(
            "the configuration does not validate with the provisioned values:\n"
            + "\n".join(str(p) for p in exc.problems),
            next_step="fix the files named above (or the answers), then run provision again",
        ) from None
    values = effective_values(loaded.settings)
    overridden = tuple(
        f"{key} (set by {loaded.provenance[key]})"
        for key, value in _leaf_keys(document)
        if key in loaded.provenance and loaded.provenance[key].path != path
        and str(_plain(values.get(key))) != str(value)
    )  # fmt: skip
    return changed, overridden


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


async def enroll_terminal(
    answers: ans.Answers, identity: Any, key_path: Path, options: Options, ca_file: Path | None
) -> EnrollmentRecord:
    """Send the signed enrollment request; keep central's verified, signed answer."""
    from central_sync import protocol
    from central_sync.agent.enroll import EnrollmentError, enroll_signed
    from central_sync.agent.errors import SyncAgentError, TransportError
    from central_sync.agent.transport import AiohttpTransport

    assert answers.central_url
    assert answers.central_public_key
    assert answers.location is not None
    if not answers.registration_code:
        raise ans.AnswersError(
            ["registration_code: needed to enroll this key (--registration-code)"]
        )
    central_key = bytes.fromhex(answers.central_public_key)
    transport = AiohttpTransport(
        answers.central_url, ca_file=ca_file, user_agent="lobbypay-provision"
    )
    try:
        enrollment, signed = await enroll_signed(
            transport,
            identity,
            public_key=identity.public_key_bytes,
            registration_code=answers.registration_code,
            location=answers.location,
            label=answers.label or "",
            central_public_key=central_key,
            timeout_s=options.request_timeout_s,
        )
    except EnrollmentError as exc:
        raise ProvisionError(
            f"central refused the enrollment: {exc}",
            next_step="check the registration code and location (a code is single use and "
            "expires), or ask the operator for a new one",
            retryable=exc.retryable,
        ) from None
    except TransportError as exc:
        raise ProvisionError(
            f"central cannot be reached: {exc}",
            next_step="check the network and the central URL, then run provision again",
            retryable=True,
        ) from None
    except (SyncAgentError, protocol.BuildError) as exc:
        raise ProvisionError(f"enrollment failed: {exc}") from None
    finally:
        await transport.close()
    record = EnrollmentRecord(
        terminal_id=enrollment.terminal_id,
        central_url=answers.central_url,
        central_public_key=central_key,
        location=enrollment.location,
        label=enrollment.label,
        enrolled_ms=enrollment.enrolled_ms,
        enrollment=signed,
    )
    save_record(record_path(key_path), record)
    return record


async def provision(
    answers: ans.Answers,
    options: Options,
    *,
    out: TextIO,
    ask_devices: Callable[[ans.Devices, _Probed], ans.Devices] | None = None,
) -> Report:
    """Run every step (see the module docstring) with checked ``answers``."""
    from firmware_config.identity import (
        IdentityError,
        generate_identity,
        load_identity,
        public_key_fingerprint,
    )

    assert answers.role
    assert answers.central_public_key
    assert answers.central_url
    probed = (
        await probe_devices(options, answers.devices, out) if answers.role == "kiosk" else _Probed()
    )
    devices = answers.devices
    if ask_devices is not None and answers.role == "kiosk":
        devices = ask_devices(devices, probed)
    choices = choose_devices(answers.role, devices, probed, previous_devices(options.config_dir))
    config_changed, overridden = write_config(options.config_dir, config_document(answers, choices))

    from firmware_config.loader import load_config

    settings = load_config(options.config_dir).settings
    key_path = settings.identity_key_path
    if key_path.exists():
        identity = load_identity(key_path)
        identity_state = "kept"
    else:
        try:
            identity = generate_identity(key_path)
        except IdentityError as exc:
            raise ProvisionError(str(exc), next_step=exc.next_step) from None
        identity_state = "created"
    record = existing_enrollment(key_path, answers.central_public_key)
    if record is not None and record.central_url.rstrip("/") != answers.central_url:
        raise ProvisionError(
            f"this terminal is enrolled with the central at {record.central_url}",
            next_step="run `lobbypay decommission` first to move it to another central",
        )
    if record is None:
        record = await enroll_terminal(
            answers, identity, key_path, options, settings.sync.tls_ca_file
        )
        enrollment_state = "enrolled now"
    else:
        enrollment_state = "already enrolled"
    ownership = hand_over(
        (settings.terminal.data_dir, key_path.parent, options.config_dir / CENTRAL_DIR),
        options.service_user,
    )
    units = install_units(
        answers.role,
        source_dir=options.units_from,
        unit_dir=options.unit_dir,
        enable=options.enable_units,
    )
    return Report(
        terminal_id=identity.terminal_id,
        fingerprint=identity.fingerprint,
        role=answers.role,
        label=answers.label or "",
        location=record.location,
        central_url=answers.central_url,
        central_fingerprint=public_key_fingerprint(bytes.fromhex(answers.central_public_key)),
        identity=identity_state,
        enrollment=enrollment_state,
        config_path=options.config_dir / PROVISION_FILE,
        config_changed=config_changed,
        overridden=overridden,
        devices=choices,
        probe_lines=tuple(probed.lines),
        units=units,
        ownership=ownership,
    )
