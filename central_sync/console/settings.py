"""Settings of the operator console (environment ``LOBBYPAY_CONSOLE_<FIELD>``).

The console runs inside the central service (``lobbypay central serve``); these
are its own limits, apart from the ledger's settings.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "LOBBYPAY_CONSOLE_"


class ConsoleSettings(BaseSettings):
    """Sessions, login throttling, paging and the day boundary of the console."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, use_attribute_docstrings=True
    )

    session_idle_s: int = Field(default=30 * 60, gt=0)
    """A session ends after this long without a request, in seconds."""

    session_absolute_s: int = Field(default=12 * 3600, gt=0)
    """A session ends this long after login whatever happens, in seconds."""

    session_touch_s: int = Field(default=60, ge=0)
    """A session's last-seen time is written at most this often, in seconds."""

    login_failures_max: int = Field(default=5, gt=0)
    """Failed logins for one user name within the window before it is throttled."""

    login_remote_failures_max: int = Field(default=30, gt=0)
    """Failed logins from one address within the window before it is throttled."""

    login_window_s: int = Field(default=15 * 60, gt=0)
    """The window failed logins are counted in, in seconds."""

    page_rows_max: int = Field(default=50, gt=0, le=500)
    """Rows on one page of a list."""

    volume_days_max: int = Field(default=31, gt=0, le=366)
    """Days the daily volume chart shows."""

    export_rows_max: int = Field(default=2_000_000, gt=0)
    """Most ledger payments one export reads."""

    utc_offset_min: int = Field(default=0, ge=-14 * 60, le=14 * 60)
    """Where the console's days begin, as minutes east of UTC (Moscow: 180)."""
