"""Settings of the central ledger service (``lobbypay central``).

Layered: defaults, then an optional TOML file (``--config FILE``), then
environment variables ``LOBBYPAY_LEDGER_<FIELD>``, then command-line overrides.
(The terminal's own view of central — its URL and pinned key — lives in
``firmware_config.settings.CentralSettings``; this is the service's side.)
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from central_sync.central.errors import BadRequestError

ENV_PREFIX = "LOBBYPAY_LEDGER_"
CONFIG_FILE_BYTES_MAX = 1024 * 1024


class CentralServiceSettings(BaseSettings):
    """Everything the central ledger service needs to run."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, use_attribute_docstrings=True
    )

    data_dir: Path = Path("/var/lib/lobbypay/central")
    """Directory for central's key and (by default) its SQLite database."""

    database_url: str = ""
    """sqlite:///path or postgresql://user@host/db[?schema=name]; empty: data_dir/central.db."""

    key_path: Path | None = None
    """Central's Ed25519 private key (PEM, mode 0600); empty means data_dir/central.key."""

    host: str = "127.0.0.1"
    """Address to listen on."""

    port: int = Field(default=8470, ge=0, le=65535)
    """TCP port to listen on (0 picks a free one)."""

    operator_token: SecretStr | None = None
    """Bearer token for the /v1/admin endpoints; unset disables them."""

    batch_wire_bytes_max: int = Field(default=8 * 1024 * 1024, gt=0)
    """Largest accepted upload (compressed batch), in bytes."""

    batch_decompressed_bytes_max: int = Field(default=32 * 1024 * 1024, gt=0)
    """Largest batch after decompression, in bytes (decompression-bomb bound)."""

    batch_entries_max: int = Field(default=20_000, gt=0)
    """Most entries in one batch."""

    small_request_bytes_max: int = Field(default=64 * 1024, gt=0)
    """Largest enrollment request, heartbeat or admin request, in bytes."""

    ingest_concurrency_max: int = Field(default=32, gt=0)
    """Uploads verified or applied at once; more are answered retry-later (back-pressure)."""

    request_timeout_s: float = Field(default=60.0, gt=0)
    """Longest a request may take before it is answered 503, in seconds."""

    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    """Grace period for requests in flight at shutdown, in seconds."""

    pg_pool_size_max: int = Field(default=10, gt=0)
    """PostgreSQL connections per worker process."""

    migrate_on_start: bool = True
    """Apply pending database migrations when the service starts."""

    registration_code_valid_s: int = Field(default=24 * 3600, gt=0)
    """Default lifetime of a new registration code, in seconds."""

    revocations_valid_s: int = Field(default=7 * 24 * 3600, gt=0)
    """Lifetime of a signed revocation list, in seconds (re-issued when half is gone)."""

    config_valid_s: int = Field(default=30 * 24 * 3600, gt=0)
    """Default lifetime of a signed configuration bundle, in seconds."""

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'central.db').resolve()}"

    @property
    def resolved_key_path(self) -> Path:
        return self.key_path or self.data_dir / "central.key"


def load_settings(config_file: Path | None = None, **overrides: Any) -> CentralServiceSettings:
    """Defaults < TOML file < environment < ``overrides`` (None values are ignored).

    Raises :class:`BadRequestError` naming every problem.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            raw = config_file.read_bytes()[: CONFIG_FILE_BYTES_MAX + 1]
        except OSError as exc:
            raise BadRequestError(f"cannot read {config_file}: {exc.strerror}") from None
        if len(raw) > CONFIG_FILE_BYTES_MAX:
            raise BadRequestError(f"{config_file} is larger than {CONFIG_FILE_BYTES_MAX} bytes")
        try:
            values.update(tomllib.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise BadRequestError(f"{config_file}: {exc}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        # Environment variables outrank the file but not explicit overrides:
        # pydantic-settings gives init values priority, so merge env first.
        env_only = CentralServiceSettings()
        env_set = {name: getattr(env_only, name) for name in env_only.model_fields_set}
        merged = {**{k: v for k, v in values.items() if k not in overrides}, **env_set}
        merged.update({k: v for k, v in overrides.items() if v is not None})
        return CentralServiceSettings(**merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise BadRequestError(f"invalid central settings: {problems}") from None
