"""What the technician answered: from flags, an answer file, or prompts.

Every answer is checked before anything on the box changes, and every problem is
reported at once (one line per key), so a bad answer file is fixed in one pass.

Answer file (``--answers FILE.toml``)::

    role = "kiosk"                       # or "gateway"
    label = "Lenina 5, entrance 2"
    location = "msk-lenina-5"            # the location of the registration code
    data_dir = "/var/lib/lobbypay"
    central_url = "https://central.example.org:8470"
    central_public_key = "<64 hex digits, from `lobbypay central init`>"
    central_key_fingerprint = "3f2a:91c0:..."   # optional: checked against the key
    registration_code = "K7QM-2XHD-PW9A-TR4E"

    [devices]   # "auto" (what the probe finds), "none", "simulator", or a device
    payment_terminal = "auto"            # or /dev/ttyUSB0, tcp://10.0.0.5:20007
    printer = "auto"
    card_reader = "auto"                 # or a PC/SC reader name
    scanner = "auto"

Flags win over the file; prompts (on a terminal, or with ``--interactive``)
fill in what neither gave, each with a default shown in brackets.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TextIO

from firmware_config.identity import public_key_fingerprint

ROLES = ("kiosk", "gateway")
DEVICE_NAMES = ("payment_terminal", "printer", "card_reader", "scanner")
AUTO = "auto"
NONE = "none"
SIMULATOR = "simulator"
DEFAULT_DATA_DIR = "/var/lib/lobbypay"
ANSWER_FILE_BYTES_MAX = 64 * 1024
PROMPT_ATTEMPTS_MAX = 5

_LOCATION_RE = re.compile(r"^\S{1,128}$")
_CODE_RE = re.compile(r"^[A-Za-z0-9-]{6,64}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_DEVICE_RE = re.compile(r"^[^\x00-\x1f]{1,512}$")


class AnswersError(ValueError):
    """Some answers are missing or wrong; every problem is in :attr:`problems`."""

    def __init__(self, problems: list[str]) -> None:
        assert problems
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True, kw_only=True)
class Devices:
    """Device choices: ``auto``, ``none``, ``simulator`` or a device path / URL / reader."""

    payment_terminal: str = AUTO
    printer: str = AUTO
    card_reader: str = AUTO
    scanner: str = AUTO


@dataclass(frozen=True, slots=True, kw_only=True)
class Answers:
    """Everything provisioning needs to know (all optional until :func:`check`)."""

    role: str | None = None
    label: str | None = None
    location: str | None = None
    data_dir: str | None = None
    central_url: str | None = None
    central_public_key: str | None = None
    central_key_fingerprint: str | None = None
    registration_code: str | None = None
    devices: Devices = field(default_factory=Devices)

    def merged_over(self, base: Answers) -> Answers:
        """These answers where given, ``base``'s elsewhere (devices key by key)."""
        values: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "devices":
                continue
            mine = getattr(self, f.name)
            values[f.name] = mine if mine is not None else getattr(base, f.name)
        devices = {
            name: (
                getattr(self.devices, name)
                if getattr(self.devices, name) != AUTO
                else getattr(base.devices, name)
            )
            for name in DEVICE_NAMES
        }
        return Answers(**values, devices=Devices(**devices))


def normalize_fingerprint(text: str) -> str:
    """Hex digits of a fingerprint, lower case, without separators."""
    return re.sub(r"[\s:.-]", "", text).lower()


def load_answer_file(path: Path) -> Answers:
    """Parse an answer file (see the module docstring); AnswersError on any problem."""
    try:
        with open(path, "rb") as f:
            raw = f.read(ANSWER_FILE_BYTES_MAX + 1)
    except OSError as exc:
        raise AnswersError([f"{path}: cannot read: {exc.strerror}"]) from None
    if len(raw) > ANSWER_FILE_BYTES_MAX:
        raise AnswersError([f"{path}: larger than {ANSWER_FILE_BYTES_MAX} bytes"])
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AnswersError([f"{path}: not a TOML file: {exc}"]) from None
    problems: list[str] = []
    scalars = {f.name for f in fields(Answers)} - {"devices"}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "devices":
            continue
        if key not in scalars:
            problems.append(f"{path}: {key}: unknown answer")
        elif not isinstance(value, str):
            problems.append(f"{path}: {key}: must be a string")
        else:
            values[key] = value
    devices: dict[str, str] = {}
    table = data.get("devices", {})
    if not isinstance(table, dict):
        problems.append(f"{path}: devices: must be a table ([devices])")
        table = {}
    for key, value in table.items():
        if key not in DEVICE_NAMES:
            problems.append(f"{path}: devices.{key}: unknown device")
        elif not isinstance(value, str):
            problems.append(f"{path}: devices.{key}: must be a string")
        else:
            devices[key] = value
    if problems:
        raise AnswersError(problems)
    return Answers(**values, devices=Devices(**devices))


def check(answers: Answers, *, need_code: bool) -> Answers:
    """Normalize and check every answer; AnswersError lists each problem."""
    problems: list[str] = []
    role = (answers.role or "").strip().lower()
    if role not in ROLES:
        problems.append(f"role: must be one of {', '.join(ROLES)} (--role)")
    location = (answers.location or "").strip()
    if not _LOCATION_RE.match(location):
        problems.append("location: 1-128 characters without spaces, as on the code (--location)")
    # Central needs a label for operators; the location is the natural default.
    label = (answers.label or "").strip() or location
    if len(label) > 200:
        problems.append("label: at most 200 characters (--label)")
    data_dir = (answers.data_dir or DEFAULT_DATA_DIR).strip()
    if not Path(data_dir).is_absolute():
        problems.append("data_dir: must be an absolute path (--data-dir)")
    url = (answers.central_url or "").strip().rstrip("/")
    url_problem = _check_url(url)
    if url_problem:
        problems.append(f"central_url: {url_problem} (--central-url)")
    key = (answers.central_public_key or "").strip().lower()
    if not _HEX64_RE.match(key):
        problems.append(
            "central_public_key: 64 hexadecimal digits, as printed by `lobbypay central init` "
            "(--central-key)"
        )
    elif answers.central_key_fingerprint is not None:
        expected = normalize_fingerprint(public_key_fingerprint(bytes.fromhex(key)))
        if normalize_fingerprint(answers.central_key_fingerprint) != expected:
            problems.append(
                "central_key_fingerprint: does not match the central key given; the key is "
                "not central's (or was mistyped): nothing was changed"
            )
    code = (answers.registration_code or "").strip().upper()
    if code and not _CODE_RE.match(code):
        problems.append("registration_code: 6-64 letters, digits or dashes (--registration-code)")
    elif not code and need_code:
        problems.append(
            "registration_code: needed to enroll (`lobbypay central registration-code` "
            "prints one) (--registration-code)"
        )
    for name in DEVICE_NAMES:
        value = getattr(answers.devices, name).strip()
        if not _DEVICE_RE.match(value):
            problems.append(f"devices.{name}: auto, none, simulator or a device (--{name})")
    if problems:
        raise AnswersError(problems)
    return Answers(
        role=role,
        label=label,
        location=location,
        data_dir=data_dir,
        central_url=url,
        central_public_key=key,
        central_key_fingerprint=answers.central_key_fingerprint,
        registration_code=code or None,
        devices=Devices(**{n: getattr(answers.devices, n).strip() for n in DEVICE_NAMES}),
    )


def _check_url(url: str) -> str:
    from pydantic import ValidationError

    from firmware_config.settings import CentralSettings

    if not url:
        return "needed (https://host:port of the central ledger)"
    try:
        CentralSettings(url=url)
    except ValidationError as exc:
        return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
    return ""


# --- prompts ---------------------------------------------------------------------


@dataclass(slots=True)
class Prompter:
    """Asks the technician, in English and Russian, with a default in brackets."""

    read: Callable[[], str]
    out: TextIO

    def ask(
        self,
        en: str,
        ru: str,
        default: str | None = None,
        *,
        valid: Callable[[str], str | None] | None = None,
    ) -> str:
        """One answer; ``valid`` returns a problem text or None. Bounded attempts."""
        shown = f" [{default}]" if default else ""
        for _ in range(PROMPT_ATTEMPTS_MAX):
            self.out.write(f"{en} / {ru}{shown}: ")
            self.out.flush()
            line = self.read()
            if line == "":
                raise AnswersError([f"{en}: no answer (input ended)"])
            answer = line.strip() or (default or "")
            problem = valid(answer) if valid is not None else (None if answer else "needed")
            if problem is None:
                return answer
            self.out.write(f"  ! {problem}\n")
        raise AnswersError([f"{en}: no acceptable answer after {PROMPT_ATTEMPTS_MAX} tries"])

    def confirm(self, en: str, ru: str) -> bool:
        """A yes/no question; only an explicit yes (y, yes, д, да) is yes."""
        answer = self.ask(f"{en} (y/n)", f"{ru} (д/н)", "n", valid=lambda _a: None)
        return answer.strip().lower() in ("y", "yes", "д", "да")


def prompt_missing(answers: Answers, prompter: Prompter) -> Answers:
    """Ask for every answer not given yet (devices are asked after probing)."""

    def one_of(options: tuple[str, ...]) -> Callable[[str], str | None]:
        return lambda a: None if a.lower() in options else f"one of {', '.join(options)}"

    def location_ok(a: str) -> str | None:
        return None if _LOCATION_RE.match(a) else "1-128 characters without spaces"

    def url_ok(a: str) -> str | None:
        return _check_url(a.strip().rstrip("/")) or None

    def key_ok(a: str) -> str | None:
        return None if _HEX64_RE.match(a.strip().lower()) else "64 hexadecimal digits"

    def code_ok(a: str) -> str | None:
        return None if _CODE_RE.match(a.strip()) else "6-64 letters, digits or dashes"

    values: dict[str, Any] = {}
    if answers.role is None:
        values["role"] = prompter.ask("Role (kiosk/gateway)", "Роль", "kiosk", valid=one_of(ROLES))
    if answers.label is None:
        values["label"] = prompter.ask(
            "Label for operators (empty: the location)",
            "Название для операторов (пусто: код места)",
            "",
            valid=lambda _a: None,
        )
    if answers.location is None:
        values["location"] = prompter.ask(
            "Location id (as on the registration code)", "Код места установки", valid=location_ok
        )
    if answers.data_dir is None:
        values["data_dir"] = prompter.ask(
            "Data directory",
            "Каталог данных",
            DEFAULT_DATA_DIR,
            valid=lambda a: None if Path(a).is_absolute() else "an absolute path",
        )
    if answers.central_url is None:
        values["central_url"] = prompter.ask("Central URL", "Адрес центра", valid=url_ok)
    key = answers.central_public_key
    if key is None:
        key = prompter.ask("Central public key", "Открытый ключ центра", valid=key_ok).lower()
        values["central_public_key"] = key
    if answers.central_key_fingerprint is None and _HEX64_RE.match(key.strip().lower()):
        fingerprint = public_key_fingerprint(bytes.fromhex(key.strip().lower()))
        prompter.out.write(
            f"Central key fingerprint / Отпечаток ключа центра: {fingerprint}\n"
            "Compare it with the central console or `lobbypay central init`. / "
            "Сверьте его с консолью центра или `lobbypay central init`.\n"
        )
        if not prompter.confirm("Does it match?", "Совпадает?"):
            raise AnswersError(["central_public_key: the technician did not confirm the key"])
        values["central_key_fingerprint"] = fingerprint
    if answers.registration_code is None:
        values["registration_code"] = prompter.ask(
            "Registration code (empty if enrolled already)",
            "Код регистрации (пусто, если уже зарегистрирован)",
            "",
            valid=lambda a: None if not a or code_ok(a) is None else code_ok(a),
        )
    return replace(answers, **values)


def device_flags(values: Mapping[str, str | None]) -> Devices:
    """Devices from flags (a missing flag is ``auto``)."""
    return Devices(**{name: values.get(name) or AUTO for name in DEVICE_NAMES})
