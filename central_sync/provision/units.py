"""Installing, enabling, restarting and removing the terminal's systemd units.

The unit files ship in the repository's ``systemd/`` directory. Provisioning
copies the ones a role needs into the unit directory (``/etc/systemd/system``
by default; tests use a temporary one), each atomically and only if its bytes
differ, then — when systemd is running here and the technician did not say
``--no-enable`` — runs ``systemctl daemon-reload`` and ``systemctl enable`` for
them. Every ``systemctl`` call has a timeout.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from central_sync.agent.files import remove_file, write_atomic

DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
SYSTEMCTL_TIMEOUT_S = 60.0
UNIT_BYTES_MAX = 64 * 1024
SYNC_UNIT = "lobbypay-sync.service"

ROLE_UNITS: dict[str, tuple[str, ...]] = {
    "kiosk": ("lobbypay-kiosk.service", "lobbypay-kiosk-browser.service", SYNC_UNIT),
    "gateway": ("lobbypay-gateway.service", SYNC_UNIT),
}
"""Units each role runs (the sync agent runs beside either)."""

ALL_UNITS: tuple[str, ...] = tuple(dict.fromkeys(u for units in ROLE_UNITS.values() for u in units))

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class UnitError(RuntimeError):
    """A unit file is missing or unreadable, or systemctl failed."""

    def __init__(self, message: str, *, next_step: str = "") -> None:
        super().__init__(message)
        self.next_step = next_step


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitReport:
    """What happened to the units."""

    unit_dir: Path
    units: tuple[str, ...]
    changed: tuple[str, ...]
    """Unit files written (new or different); the rest were already in place."""
    systemctl: str
    """"enabled", "disabled", "restarted", or why systemctl was not run."""


def repo_unit_dir() -> Path:
    """The repository's ``systemd/`` directory (next to the packages)."""
    return Path(__file__).resolve().parents[2] / "systemd"


def systemd_running() -> bool:
    """Whether systemctl can talk to a running systemd (sd_booted(3))."""
    return shutil.which("systemctl") is not None and Path("/run/systemd/system").is_dir()


def _run_systemctl(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemctl", *args],
        capture_output=True,
        text=True,
        timeout=SYSTEMCTL_TIMEOUT_S,
        check=False,
    )


def _systemctl(run: Runner, *args: str) -> None:
    try:
        result = run(args)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UnitError(f"systemctl {' '.join(args)} failed: {exc}") from None
    if result.returncode != 0:
        raise UnitError(
            f"systemctl {' '.join(args)} failed ({result.returncode}): "
            f"{(result.stderr or '').strip()[:300]}",
            next_step="see `journalctl -xe`; fix the unit and run provision again",
        )


def install_units(
    role: str,
    *,
    source_dir: Path,
    unit_dir: Path = DEFAULT_UNIT_DIR,
    enable: bool = True,
    run: Runner | None = None,
) -> UnitReport:
    """Copy the role's units from ``source_dir`` to ``unit_dir`` and enable them."""
    names = ROLE_UNITS[role]
    contents: dict[str, bytes] = {}
    for name in names:
        source = source_dir / name
        try:
            with open(source, "rb") as f:
                data = f.read(UNIT_BYTES_MAX + 1)
        except OSError as exc:
            raise UnitError(
                f"unit {name} not found in {source_dir}: {exc.strerror}",
                next_step="install lobbypay completely (the systemd/ directory ships with it), "
                "or name the directory with --units-from",
            ) from None
        if len(data) > UNIT_BYTES_MAX:
            raise UnitError(f"unit {source} is larger than {UNIT_BYTES_MAX} bytes")
        contents[name] = data
    # Read everything first: a missing unit must not leave half the set installed.
    changed = tuple(name for name in names if write_atomic(unit_dir / name, contents[name]))
    if not enable:
        state = "not enabled (--no-enable)"
    elif run is None and not systemd_running():
        state = "not enabled (systemd is not running here)"
    else:
        runner = run or _run_systemctl
        _systemctl(runner, "daemon-reload")
        _systemctl(runner, "enable", *names)
        state = "enabled"
    return UnitReport(unit_dir=unit_dir, units=names, changed=changed, systemctl=state)


def restart_units(names: Sequence[str], *, run: Runner | None = None) -> str:
    """Restart running units (``try-restart``); says what happened."""
    if run is None and not systemd_running():
        return "not restarted (systemd is not running here)"
    _systemctl(run or _run_systemctl, "try-restart", *names)
    return "restarted"


def remove_units(
    *, unit_dir: Path = DEFAULT_UNIT_DIR, disable: bool = True, run: Runner | None = None
) -> UnitReport:
    """Stop and disable every lobbypay unit, then remove the files provisioning installed."""
    present = tuple(name for name in ALL_UNITS if (unit_dir / name).exists())
    if not disable:
        state = "not disabled (--no-enable)"
    elif run is None and not systemd_running():
        state = "not disabled (systemd is not running here)"
    elif present:
        runner = run or _run_systemctl
        _systemctl(runner, "disable", "--now", *present)
        state = "disabled"
    else:
        state = "nothing to disable"
    removed = tuple(name for name in present if remove_file(unit_dir / name))
    if removed and state == "disabled":
        _systemctl(run or _run_systemctl, "daemon-reload")
    return UnitReport(unit_dir=unit_dir, units=present, changed=removed, systemctl=state)
