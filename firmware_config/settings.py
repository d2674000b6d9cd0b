"""The typed settings of a lobbypay terminal (and of the central ledger service).

Theory of operation: :class:`Settings` is a tree of frozen pydantic models, one
model per section (``terminal``, ``journal``, ``devices``, ...). Every field has
a docstring, which ``lobbypay config describe`` and the documentation tests read
through :func:`field_doc`. The docstrings are read from the source only when
asked for (pydantic's ``use_attribute_docstrings`` would parse this module's
source at every start, a third of the kiosk's start-up import time). Values arrive only
through :func:`firmware_config.loader.load_config`, which layers the TOML files
and the ``LOBBYPAY_<SECTION>__<KEY>`` environment variables and remembers where
each value came from; this module knows nothing about files.

Adding a section is a one-model change: write a ``_Section`` subclass and add a
field for it on :class:`Settings`. The loader, ``config show`` and the tests walk
the model, so they pick the new section up by themselves.

Limits follow the house rule: a bound on everything, unit last (``_s`` seconds,
``_minor`` minor units of money, ``_max``/``_min`` for bounds). Integers are
strict: ``offline_payments_max = "10"`` or ``= true`` in a file is a type error,
never a silent conversion (the loader converts environment strings itself).
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "LOBBYPAY_"
"""Prefix of every environment variable the loader reads."""

ENV_NESTED_DELIMITER = "__"
"""Separates section and key in environment variable names."""

SECRET_MASK = "***"  # noqa: S105 (a mask, not a password)
"""What ``config show`` prints instead of a secret value."""

DEFAULT_DATA_DIR = Path("/var/lib/lobbypay")

PositiveInt = Annotated[int, Field(strict=True, gt=0)]
"""A strictly positive integer; booleans, floats and strings are refused."""

PositiveFloat = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
"""A strictly positive, finite number (seconds, for timeouts)."""

Port = Annotated[int, Field(strict=True, ge=1, le=65535)]

_HEX_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_ZVT_PASSWORD_RE = re.compile(r"^[0-9]{6}$")
_LANGUAGE_RE = re.compile(r"^[a-z]{2}$")
_PROFILE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

SUPPORTED_LANGUAGES = ("ru", "en")
"""Languages the kiosk has texts for."""


def _require_absolute(value: Path) -> Path:
    # Services run with `/` as their working directory, so a relative path in a
    # configuration file would silently point somewhere unexpected.
    if not value.is_absolute():
        raise ValueError("must be an absolute path")
    return value


AbsolutePath = Annotated[Path, AfterValidator(_require_absolute)]
"""A filesystem path that must be absolute."""


def _require_url(value: str, info: ValidationInfo, drivers: frozenset[str]) -> str:
    driver = info.data.get("driver")
    if driver in drivers and value == "":
        raise ValueError(f"must be set when driver is {driver!r}")
    return value


class _Section(BaseModel):
    """Common configuration of every section: frozen, no unknown keys, docstrings."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_default=True,
        # A ValidationError's text would otherwise quote the input, secrets included.
        hide_input_in_errors=True,
    )


class TerminalSettings(_Section):
    """What this box is and where it keeps its data."""

    role: Literal["kiosk", "gateway", "central"] = "kiosk"
    """Which service this box runs: a lobby kiosk, an ATM-side gateway, or the central ledger."""

    label: str = Field(default="", max_length=200)
    """Human-readable name shown to operators (for example "Lenina 5, entrance 2")."""

    data_dir: AbsolutePath = DEFAULT_DATA_DIR
    """Directory holding the journal, the catalog and the identity key (absolute path)."""

    location: str = Field(default="", max_length=200)
    """Street address or description of where the box stands, sent at enrollment."""


class IdentitySettings(_Section):
    """The terminal's Ed25519 identity key."""

    key_path: AbsolutePath | None = None
    """Private key file (PEM, mode 0600); unset means <terminal.data_dir>/identity/ed25519.key."""


class JournalSettings(_Section):
    """The durable local journal and its offline acceptance limits."""

    path: AbsolutePath | None = None
    """SQLite journal file; unset means <terminal.data_dir>/journal.db."""

    offline_payment_amount_max_minor: PositiveInt = 1_500_000
    """Largest single card payment accepted while offline, in kopecks (default 15,000.00 RUB)."""

    offline_amount_total_max_minor: PositiveInt = 50_000_000
    """Cap on the total amount of payments stored offline and not yet acknowledged, in kopecks."""

    offline_payments_max: PositiveInt = 5_000
    """Cap on the number of payments stored offline and not yet acknowledged."""

    offline_age_max_s: PositiveInt = 72 * 3600
    """Oldest unacknowledged offline payment allowed before new card payments are refused, in s."""

    group_commit_entries_max: PositiveInt = 1024
    """Most appends that share one fsync (group commit batch size)."""

    append_queue_max: PositiveInt = 10_000
    """Most appends waiting for the writer; beyond this, appends are refused (back-pressure)."""

    retention_s: PositiveInt = 90 * 24 * 3600
    """How long acknowledged entries are kept before they may be pruned, in seconds."""

    @field_validator("offline_amount_total_max_minor")
    @classmethod
    def _total_not_below_single(cls, value: int, info: ValidationInfo) -> int:
        single = info.data.get("offline_payment_amount_max_minor")
        if isinstance(single, int) and value < single:
            raise ValueError(
                "must be at least journal.offline_payment_amount_max_minor, "
                "or no offline payment could ever be stored"
            )
        return value


class CentralSettings(_Section):
    """Where the central ledger is and how to recognise it."""

    url: str = Field(default="", max_length=2048)
    """Base URL of the central ledger service (https://...); empty means not configured yet."""

    public_key: str = ""
    """Central's pinned Ed25519 public key, 64 hex digits; empty means not pinned yet."""

    request_timeout_s: PositiveFloat = 10.0
    """Timeout for one HTTP request to central, in seconds."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value == "":
            return value
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for a local test ledger)")
        authority = value.split("://", 1)[1].split("/", 1)[0]
        if "@" in authority:
            # Terminals authenticate with their Ed25519 key; a password in the
            # URL would end up in `config show` and in logs.
            raise ValueError("must not contain credentials (user:password@)")
        if authority == "":
            raise ValueError("has no host")
        return value

    @field_validator("public_key")
    @classmethod
    def _check_public_key(cls, value: str) -> str:
        if value == "":
            return value
        normalized = value.strip().lower()
        if not _HEX_KEY_RE.fullmatch(normalized):
            raise ValueError("must be 64 hexadecimal digits (a 32-byte Ed25519 public key)")
        return normalized

    @property
    def public_key_bytes(self) -> bytes | None:
        """The pinned key as 32 bytes, or None when it is not pinned yet."""
        return bytes.fromhex(self.public_key) if self.public_key else None


class SyncSettings(_Section):
    """The sync agent: forwards the journal to central and pulls the catalog down."""

    batch_entries_max: Annotated[int, Field(strict=True, gt=0, le=20_000)] = 10_000
    """Most journal entries in one uploaded batch (central refuses more than 20,000)."""

    batch_bytes_max: Annotated[int, Field(strict=True, ge=64 * 1024, le=32 * 1024 * 1024)] = (
        4 * 1024 * 1024
    )
    """Largest signed batch before compression, in bytes (central's default bound is 32 MiB)."""

    response_timeout_s: PositiveFloat = 60.0
    """How long to wait for central's answer to one uploaded batch, in seconds."""

    backoff_initial_s: PositiveFloat = 1.0
    """Upper bound of the first retry delay after a failed upload, in seconds (full jitter)."""

    backoff_max_s: PositiveFloat = 300.0
    """Upper bound of any retry delay, however many uploads failed in a row, in seconds."""

    idle_poll_interval_s: PositiveFloat = 1.0
    """How often the agent looks for new journal entries when everything is sent, in seconds."""

    heartbeat_interval_s: PositiveFloat = 60.0
    """Time between heartbeats (queue depth, versions, device health) to central, in seconds."""

    catalog_poll_interval_s: PositiveFloat = 300.0
    """Time between asking central for a newer catalog release, in seconds."""

    catalog_download_timeout_s: PositiveFloat = 600.0
    """Longest a catalog release download may take, in seconds."""

    catalog_bytes_max: Annotated[int, Field(strict=True, gt=0, le=4 * 1024**3)] = 1024**3
    """Largest catalog release the agent downloads, in bytes."""

    tls_ca_file: AbsolutePath | None = None
    """CA certificates (PEM) that central's TLS certificate must chain to; unset: system CAs."""

    @field_validator("backoff_max_s")
    @classmethod
    def _max_not_below_initial(cls, value: float, info: ValidationInfo) -> float:
        initial = info.data.get("backoff_initial_s")
        if isinstance(initial, int | float) and value < initial:
            raise ValueError("must not be less than sync.backoff_initial_s")
        return value


class DeploymentSettings(_Section):
    """Settings shared by every terminal of one deployment (one operator, one city)."""

    id: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9._-]*$")
    """Deployment identifier; also written on resident cards (tag 82)."""

    currency: Literal["RUB"] = "RUB"
    """ISO 4217 currency of every amount in this deployment."""

    card_hash_key_path: AbsolutePath | None = None
    """HMAC key for resident card hashes; unset means <terminal.data_dir>/keys/card-hash.key."""

    virtual_number_check: Literal["luhn", "mod11", "none"] = "luhn"
    """Check digit scheme of virtual (account) numbers typed by residents."""

    virtual_number_length_min: PositiveInt = 6
    """Fewest digits in a virtual (account) number."""

    virtual_number_length_max: Annotated[int, Field(strict=True, gt=0, le=32)] = 12
    """Most digits in a virtual (account) number (at most 12 with a Luhn check digit)."""

    @field_validator("virtual_number_length_max")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("virtual_number_length_min")
        if isinstance(low, int) and value < low:
            raise ValueError("must not be less than deployment.virtual_number_length_min")
        # 13 to 19 digits with a valid Luhn digit is what a bank card number
        # looks like; the kiosk refuses such input as card data.
        if value >= 13 and info.data.get("virtual_number_check") == "luhn":
            raise ValueError(
                "virtual numbers with a Luhn check digit must have at most 12 digits, "
                "or they look like bank card numbers"
            )
        return value


class PaymentTerminalSettings(_Section):
    """The bank's payment terminal (card reader and PIN pad)."""

    driver: Literal["zvt", "simulator"] = "simulator"
    """Protocol of the payment terminal: "zvt" (ECR interface) or the built-in "simulator"."""

    url: str = Field(default="", max_length=512)
    """Serial device or pyserial URL, for example /dev/ttyUSB0 or socket://127.0.0.1:20007."""

    password: SecretStr = SecretStr("000000")
    """ZVT registration password, 6 digits (secret: never shown or logged)."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str, info: ValidationInfo) -> str:
        return _require_url(value, info, frozenset({"zvt"}))

    @field_validator("password")
    @classmethod
    def _check_password(cls, value: SecretStr) -> SecretStr:
        if not _ZVT_PASSWORD_RE.fullmatch(value.get_secret_value()):
            raise ValueError("must be exactly 6 digits")
        return value


class PrinterSettings(_Section):
    """The receipt printer."""

    driver: Literal["escpos", "simulator"] = "simulator"
    """Protocol of the receipt printer: "escpos" or the built-in "simulator"."""

    url: str = Field(default="", max_length=512)
    """Serial device or pyserial URL of the printer, for example /dev/ttyS0."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str, info: ValidationInfo) -> str:
        return _require_url(value, info, frozenset({"escpos"}))


class CardReaderSettings(_Section):
    """The resident card reader (PC/SC)."""

    driver: Literal["pcsc", "simulator", "none"] = "none"
    """Reader access: "pcsc" (through pcscd), "simulator" (demo and tests) or "none"."""

    reader_name: str = Field(default="", max_length=200)
    """Substring of the PC/SC reader name to use; empty means the first reader found."""


class ScannerSettings(_Section):
    """The QR / barcode / magstripe scanner."""

    driver: Literal["serial", "simulator", "none"] = "none"
    """Scanner access: "serial" (line-oriented serial scanner), "simulator" or "none"."""

    url: str = Field(default="", max_length=512)
    """Serial device or pyserial URL of the scanner, for example /dev/ttyACM0."""

    baudrate: Annotated[int, Field(strict=True, ge=300, le=4_000_000)] = 9600
    """Serial line speed of the scanner, in bits per second."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str, info: ValidationInfo) -> str:
        return _require_url(value, info, frozenset({"serial"}))


class DevicesSettings(_Section):
    """The devices attached to this box; each is chosen by driver name."""

    payment_terminal: PaymentTerminalSettings = PaymentTerminalSettings()
    """The bank's payment terminal."""

    printer: PrinterSettings = PrinterSettings()
    """The receipt printer."""

    card_reader: CardReaderSettings = CardReaderSettings()
    """The resident card reader."""

    scanner: ScannerSettings = ScannerSettings()
    """The QR / barcode scanner."""


class KioskSettings(_Section):
    """The resident-facing kiosk application."""

    idle_timeout_s: Annotated[int, Field(strict=True, ge=5, le=3600)] = 60
    """Seconds without a touch before the kiosk returns to the welcome screen."""

    languages: list[str] = Field(default_factory=lambda: ["ru", "en"], min_length=1, max_length=8)
    """Languages offered to residents, first is the default (codes: ru, en)."""

    service_pin_hash: SecretStr = SecretStr("")
    """Hash of the technicians' service-mode PIN (secret); empty disables service mode."""

    pin_attempts_max: Annotated[int, Field(strict=True, ge=1, le=20)] = 5
    """Wrong service-mode PINs in a row before PIN entry is locked for pin_lockout_s."""

    pin_lockout_s: Annotated[int, Field(strict=True, ge=10, le=86_400)] = 300
    """Seconds PIN entry stays locked after pin_attempts_max wrong PINs."""

    catalog_path: AbsolutePath | None = None
    """Local catalog file the kiosk reads; unset means <terminal.data_dir>/catalog.db."""

    receipt_header: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=lambda: ["lobbypay"], max_length=8
    )
    """Lines printed at the top of every receipt (operator name, address), at most 8."""

    receipt_width_chars: Annotated[int, Field(strict=True, ge=32, le=64)] = 42
    """Paper width of the receipt printer in characters (32, 42 or 48 for 58/80 mm rolls)."""

    card_timeout_s: Annotated[int, Field(strict=True, ge=10, le=255)] = 60
    """How long the payment terminal waits for the resident's card, in seconds."""

    recovery_timeout_s: Annotated[int, Field(strict=True, ge=5, le=3600)] = 60
    """How long the kiosk keeps asking the terminal about a payment whose answer was lost, in s."""

    online_check_interval_s: Annotated[int, Field(strict=True, ge=5, le=3600)] = 30
    """Seconds between checks that central is reachable (the staff line's online/offline)."""

    online_check_timeout_s: PositiveFloat = 2.0
    """Timeout of one reachability check of central, in seconds."""

    serve_host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    """Address `lobbypay kiosk --serve` listens on for the kiosk browser."""

    serve_port: Port = 8000
    """TCP port `lobbypay kiosk --serve` listens on for the kiosk browser."""

    @field_validator("languages")
    @classmethod
    def _check_languages(cls, value: list[str]) -> list[str]:
        for code in value:
            if not _LANGUAGE_RE.fullmatch(code) or code not in SUPPORTED_LANGUAGES:
                raise ValueError(
                    f"unsupported language; supported: {', '.join(SUPPORTED_LANGUAGES)}"
                )
        if len(set(value)) != len(value):
            raise ValueError("lists a language twice")
        return value


class GatewaySettings(_Section):
    """The ATM-side gateway HTTP server (OSMP check/pay and the JSON API, docs/gateway.md)."""

    listen_host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    """Address the gateway listens on."""

    listen_port: Port = 8080
    """TCP port the gateway listens on."""

    catalog_age_max_s: PositiveInt = 24 * 3600
    """Oldest local catalog (since central published it) that payments are still accepted
    against, in seconds; older, `pay` answers retry-later and `check` flags the answer stale."""

    agents_path: AbsolutePath | None = None
    """Payment agents' credentials and limits (TOML, mode 0600); unset means
    <config dir>/agents.toml."""

    catalog_path: AbsolutePath | None = None
    """Local catalog the gateway reads; unset means <terminal.data_dir>/catalog.db."""

    index_path: AbsolutePath | None = None
    """The gateway's payment index (rebuilt from the journal); unset means
    <terminal.data_dir>/gateway-index.db."""

    requests_in_flight_max: Annotated[int, Field(strict=True, ge=1, le=100_000)] = 128
    """Most requests handled at once; beyond this the gateway answers retry-later at once."""

    retry_after_s: Annotated[int, Field(strict=True, ge=1, le=3600)] = 2
    """Seconds a client is told to wait (Retry-After) after an overload or temporary refusal."""

    request_timeout_s: PositiveFloat = 10.0
    """Longest time one request may take, body read and journal write included, in seconds."""

    body_read_timeout_s: PositiveFloat = 5.0
    """Longest time to receive a request body from a client, in seconds (slow clients get 408)."""

    body_bytes_max: Annotated[int, Field(strict=True, ge=1024, le=1_048_576)] = 16_384
    """Largest request body accepted, in bytes (larger bodies get 413)."""

    keepalive_timeout_s: PositiveFloat = 15.0
    """Idle or incomplete connections are closed after this many seconds."""

    shutdown_timeout_s: PositiveFloat = 30.0
    """On SIGTERM, how long in-flight requests may take to finish, in seconds."""

    hmac_replay_window_s: Annotated[int, Field(strict=True, ge=5, le=3600)] = 300
    """A signed JSON request's timestamp may differ from the gateway clock by at most this, in s."""

    nonce_cache_entries_max: Annotated[int, Field(strict=True, ge=100, le=10_000_000)] = 200_000
    """Most request nonces remembered for replay detection; when full, signed requests are
    refused with retry-later rather than risk accepting a replay."""

    auth_cache_entries_max: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = 1024
    """Most verified Basic credentials remembered, so the slow password hash runs once each."""

    password_checks_max: Annotated[int, Field(strict=True, ge=1, le=64)] = 2
    """Most password hash computations running at once (each takes about 16 MiB and 50 ms)."""

    registry_timezone: str = Field(default="Europe/Moscow", min_length=1, max_length=64)
    """Time zone (IANA name) whose calendar days the per-agent daily registries follow."""

    tls_cert_path: AbsolutePath | None = None
    """Server certificate chain (PEM) for HTTPS; unset means plain HTTP (behind a trusted link)."""

    tls_key_path: AbsolutePath | None = None
    """Private key (PEM, mode 0600) of the server certificate."""

    tls_client_ca_path: AbsolutePath | None = None
    """CA certificates (PEM) that issue agents' client certificates; unset disables them."""

    @field_validator("registry_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name such as Europe/Moscow") from None
        return value

    @field_validator("tls_key_path")
    @classmethod
    def _key_needs_cert(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if (value is None) != (info.data.get("tls_cert_path") is None):
            raise ValueError("tls_cert_path and tls_key_path must be set together")
        return value

    @field_validator("tls_client_ca_path")
    @classmethod
    def _client_ca_needs_tls(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and info.data.get("tls_cert_path") is None:
            raise ValueError("client certificates need HTTPS: set tls_cert_path and tls_key_path")
        return value


class LoggingSettings(_Section):
    """Logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """Lowest level of log records written (DEBUG, INFO, WARNING, ERROR, CRITICAL)."""

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class Settings(BaseSettings):
    """Every setting of a lobbypay box, one section per field."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
        validate_default=True,
        hide_input_in_errors=True,
    )

    hardware_profile: str = ""
    """Shipped hardware profile layered under the local files (rpi4, generic); set in local.toml."""

    terminal: TerminalSettings = TerminalSettings()
    """What this box is and where it keeps its data."""

    identity: IdentitySettings = IdentitySettings()
    """The terminal's Ed25519 identity key."""

    journal: JournalSettings = JournalSettings()
    """The durable local journal and its offline limits."""

    central: CentralSettings = CentralSettings()
    """Where the central ledger is and how to recognise it."""

    sync: SyncSettings = SyncSettings()
    """The sync agent: batch bounds, timeouts, backoff, heartbeat and catalog intervals."""

    deployment: DeploymentSettings = DeploymentSettings()
    """Settings shared by every terminal of one deployment."""

    devices: DevicesSettings = DevicesSettings()
    """The devices attached to this box."""

    kiosk: KioskSettings = KioskSettings()
    """The resident-facing kiosk application."""

    gateway: GatewaySettings = GatewaySettings()
    """The ATM-side gateway HTTP server."""

    logging: LoggingSettings = LoggingSettings()
    """Logging."""

    @field_validator("hardware_profile")
    @classmethod
    def _check_profile_name(cls, value: str) -> str:
        if value != "" and not _PROFILE_NAME_RE.fullmatch(value):
            raise ValueError("must be a profile name such as rpi4 or generic")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The loader applies files and the environment itself, so that every
        # value carries its provenance and the environment can be passed in
        # (tests, `config show --config-dir`). Reading os.environ here as well
        # would apply it twice and hide where a value came from.
        return (init_settings,)

    @property
    def identity_key_path(self) -> Path:
        """The identity key file, with the default under the data directory resolved."""
        return self.identity.key_path or self.terminal.data_dir / "identity" / "ed25519.key"

    @property
    def journal_path(self) -> Path:
        """The journal database file, with the default under the data directory resolved."""
        return self.journal.path or self.terminal.data_dir / "journal.db"

    @property
    def card_hash_key_path(self) -> Path:
        """The card-hash HMAC key file, with the default under the data directory resolved."""
        return (
            self.deployment.card_hash_key_path or self.terminal.data_dir / "keys" / "card-hash.key"
        )


def is_profile_name(name: str) -> bool:
    """Whether ``name`` is a syntactically valid hardware profile name (no paths)."""
    return bool(_PROFILE_NAME_RE.fullmatch(name))


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingField:
    """One leaf setting of the model, as ``config show`` and the docs tests see it."""

    key: str
    """Dotted key, for example ``journal.offline_payments_max``."""

    info: FieldInfo
    """Pydantic's description of the field (annotation, default)."""

    secret: bool
    """Whether the value is a secret that is never shown."""

    description: str
    """The field's docstring."""


@functools.cache
def _attribute_docs(model: type[BaseModel]) -> dict[str, str]:
    """``{field: docstring}`` of one class's own body: a string right after an annotated name."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(model)))
    except (OSError, TypeError, SyntaxError):  # no source (frozen, zipped): no docs
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


def field_doc(model: type[BaseModel], name: str) -> str:
    """The docstring of ``model``'s field ``name`` (looked up along its classes), or ''."""
    for cls in model.__mro__:
        if (
            isinstance(cls, type)
            and issubclass(cls, BaseModel)
            and name in vars(cls).get("__annotations__", {})
        ):
            return _attribute_docs(cls).get(name, "")
    return ""


def _section_model(info: FieldInfo) -> type[BaseModel] | None:
    annotation = info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def setting_fields(model: type[BaseModel] = Settings, prefix: str = "") -> tuple[SettingField, ...]:
    """Every leaf setting of ``model``, depth first in declaration order."""
    fields: list[SettingField] = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        section = _section_model(info)
        if section is not None:
            fields.extend(setting_fields(section, f"{key}."))
        else:
            fields.append(
                SettingField(
                    key=key,
                    info=info,
                    secret=info.annotation is SecretStr,
                    description=field_doc(model, name),
                )
            )
    return tuple(fields)


def section_model_at(parts: tuple[str, ...]) -> type[BaseModel] | None:
    """The section model named by ``parts`` (``()`` is :class:`Settings`), or None."""
    model: type[BaseModel] = Settings
    for part in parts:
        info = model.model_fields.get(part)
        section = _section_model(info) if info is not None else None
        if section is None:
            return None
        model = section
    return model


def field_at(parts: tuple[str, ...]) -> FieldInfo | None:
    """The field named by ``parts``, section or leaf, or None if there is none."""
    if not parts:
        return None
    model = section_model_at(parts[:-1])
    return model.model_fields.get(parts[-1]) if model is not None else None


def effective_values(settings: Settings) -> dict[str, object]:
    """Every leaf setting's value by dotted key (secrets stay :class:`SecretStr`)."""
    values: dict[str, object] = {}
    for item in setting_fields():
        node: object = settings
        for part in item.key.split("."):
            node = getattr(node, part)
        values[item.key] = node
    return values
