"""Signed configuration bundles from central, applied as a layer of the terminal's config.

DESIGN.md, "The signed sync protocol" (download: signed configuration bundles)
and issue 8, item 2.

Theory of operation
-------------------
Central publishes a :class:`~central_sync.protocol.ConfigBundle` per location or
group: ``limits``, ``timeouts``, ``offline_policy`` and ``surcharge_rules``. The
agent fetches ``GET /v1/config?terminal=<id>`` and applies it in four steps; a
failure at any step leaves the terminal exactly as it was:

1. **Verify** (:func:`protocol.verify_config_bundle`): central's signature with
   the key pinned at provisioning, the structure, not older than the bundle in
   force (no rollback), not expired (no freeze). Then the scope must be this
   terminal's: ``*``, ``location:<terminal.location>`` or ``group:<g>`` for a
   group the terminal is in. A refused bundle changes nothing and is reported.
2. **Translate** each section to dotted setting keys (:func:`bundle_settings`):
   ``offline_policy`` names ``journal.offline_*`` limits (bare names mean
   ``journal.<name>``); ``timeouts`` may name settings ending in ``_s``;
   ``limits`` settings ending in ``_max``, ``_min``, ``_max_minor`` or
   ``_min_minor``. Anything else (central's key, the identity, device URLs,
   where the data lives) is never central's to set: such a bundle is refused.
   ``surcharge_rules`` travel with the catalog in this version; a bundle's rules
   are kept in the signed copy and reported, not turned into settings.
3. **Write** ``<config_dir>/central.d/bundle.toml`` atomically (temporary file,
   fsync, rename), its first line naming the version. The loader layers it
   between the hardware profile and ``override.d/``, so a technician's local
   overrides still win, and ``lobbypay config show`` names it
   ``central bundle vN`` beside every value it sets.
4. **Check**: the whole configuration is loaded and validated again
   (:func:`firmware_config.loader.load_config`), then the start-up check runs
   (a hook; the CLI restarts nothing itself). If either fails, the previous
   ``bundle.toml`` is written back (or removed if there was none): the bundle is
   **rolled back**, logged, kept out of the status file's version, and the
   heartbeat goes on reporting the version that is in force.

After a successful apply, the signed bytes are kept in
``central.d/bundle.signed.json`` (what `doctor` and operators can re-verify).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from central_sync import protocol
from central_sync.agent.files import remove_file, to_toml, write_atomic

logger = logging.getLogger(__name__)

CONFIG_PATH = "/v1/config"
BUNDLE_BYTES_MAX = 1024 * 1024
SIGNED_FILE_NAME = "bundle.signed.json"
SETTINGS_MAX = 256
"""Most settings one bundle may set."""

_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}(\.[a-z][a-z0-9_]{0,63}){0,3}$")
# Sections central may tune; identity, central, terminal, devices and logging
# are the box's own (a compromised or confused central must not repoint them).
_TUNABLE_SECTIONS = frozenset({"journal", "sync", "kiosk", "gateway"})
_LIMIT_SUFFIXES = ("_max", "_min", "_max_minor", "_min_minor")

OutcomeKind = Literal["applied", "current", "none", "refused", "rolled-back", "failed"]

StartCheck = Callable[[Any], None]
"""Called with the freshly loaded :class:`~firmware_config.loader.LoadedConfig`;
raises (any exception) when the new configuration must not stay."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleOutcome:
    """What one fetch-and-apply came to."""

    kind: OutcomeKind
    version: int
    """The bundle version in force afterwards (0: none)."""
    offered_version: int | None = None
    reason: str = ""
    message: str = ""
    notes: tuple[str, ...] = ()

    @property
    def problem(self) -> bool:
        return self.kind in ("refused", "rolled-back", "failed")


class BundleRefusedError(ValueError):
    """The bundle is not acceptable for this terminal (before anything was written)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def bundle_settings(bundle: protocol.ConfigBundle) -> dict[str, Any]:
    """The bundle's sections as dotted setting keys (see the module docstring)."""
    out: dict[str, Any] = {}

    def put(section: str, key: str, value: Any, allowed: Callable[[str], bool]) -> None:
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise BundleRefusedError("bad-key", f"{section}: {key!r} is not a setting name")
        parts = key.split(".")
        if parts[0] not in _TUNABLE_SECTIONS or len(parts) < 2 or not allowed(parts[-1]):
            raise BundleRefusedError(
                "not-allowed", f"{section}: {key} is not a setting central may set"
            )
        if not isinstance(value, int | str | bool | list) or isinstance(value, dict):
            raise BundleRefusedError("bad-value", f"{section}: {key} has a value of a bad type")
        if key in out:
            raise BundleRefusedError("duplicate", f"{section}: {key} is set twice")
        out[key] = value

    for key, value in bundle.offline_policy.items():
        name = key if "." in key else f"journal.{key}"
        put("offline_policy", name, value, lambda leaf: leaf.startswith("offline_"))
    for key, value in bundle.timeouts.items():
        put("timeouts", key, value, lambda leaf: leaf.endswith("_s"))
    for key, value in bundle.limits.items():
        put("limits", key, value, lambda leaf: leaf.endswith(_LIMIT_SUFFIXES))
    if len(out) > SETTINGS_MAX:
        raise BundleRefusedError("too-many", f"more than {SETTINGS_MAX} settings")
    return out


def _nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key in sorted(flat):
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise BundleRefusedError("bad-key", f"{key} is both a value and a table")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise BundleRefusedError("bad-key", f"{key} is both a value and a table")
        node[parts[-1]] = flat[key]
    return tree


def _header(bundle: protocol.ConfigBundle) -> str:
    expires = dt.datetime.fromtimestamp(bundle.expires_ms / 1000, dt.UTC).isoformat(
        timespec="seconds"
    )
    return (
        f"central bundle v{bundle.version} scope {bundle.scope} expires {expires}\n"
        "Written by the sync agent from central's signed configuration bundle; do not edit.\n"
        "Local changes belong in override.d/ or local.toml, which win over this file."
    )


def scope_matches(scope: str, *, location: str, groups: frozenset[str]) -> bool:
    """Whether a bundle for ``scope`` is meant for a terminal at ``location`` in ``groups``."""
    if scope == "*":
        return True
    kind, _, name = scope.partition(":")
    if kind == "location":
        return bool(location) and name == location
    if kind == "group":
        return name in groups
    return False


@dataclass(slots=True, kw_only=True)
class ConfigBundleApplier:
    """Applies verified bundles to one configuration directory (see the module docstring)."""

    config_dir: Path
    central_public_key: bytes
    location: str
    groups: frozenset[str] = frozenset()
    start_check: StartCheck | None = None
    env: Mapping[str, str] | None = None
    """Environment for re-loading the configuration (None: the process's own)."""
    _last: BundleOutcome | None = field(default=None, init=False)

    @property
    def bundle_path(self) -> Path:
        from firmware_config.loader import bundle_path

        return bundle_path(self.config_dir)

    @property
    def signed_path(self) -> Path:
        return self.bundle_path.with_name(SIGNED_FILE_NAME)

    @property
    def last(self) -> BundleOutcome | None:
        """The outcome of the last :meth:`apply`."""
        return self._last

    def current_version(self) -> int:
        """The version of the bundle in force (0 when there is none or it is unreadable)."""
        from firmware_config.loader import bundle_version

        try:
            with open(self.bundle_path, "rb") as f:
                first = f.read(128).decode("utf-8", "replace")
        except OSError:
            return 0
        return bundle_version(first) or 0

    def apply(self, data: bytes, *, now_ms: int) -> BundleOutcome:
        """Verify, write, check; roll back on a failed check. Never raises for bad input."""
        outcome = self._apply(data, now_ms=now_ms)
        self._last = outcome
        log = logger.info if not outcome.problem else logger.error
        log(
            "sync_config_%s version=%d offered=%s reason=%s message=%s",
            outcome.kind.replace("-", "_"),
            outcome.version,
            outcome.offered_version,
            outcome.reason,
            outcome.message,
        )
        return outcome

    def _apply(self, data: bytes, *, now_ms: int) -> BundleOutcome:
        current = self.current_version()
        try:
            bundle = protocol.verify_config_bundle(
                data,
                central_public_key=self.central_public_key,
                now_ms=now_ms,
                current_version=current,
            )
        except protocol.SyncProtocolError as exc:
            return BundleOutcome(
                kind="refused", version=current, reason=exc.reason, message=str(exc)
            )
        if bundle.version == current:
            return BundleOutcome(kind="current", version=current, offered_version=bundle.version)
        if not scope_matches(bundle.scope, location=self.location, groups=self.groups):
            return BundleOutcome(
                kind="refused",
                version=current,
                offered_version=bundle.version,
                reason="wrong-scope",
                message=f"bundle for {bundle.scope} is not for this terminal "
                f"(location {self.location or '-'})",
            )
        try:
            text = to_toml(_nested(bundle_settings(bundle)), header=_header(bundle))
        except BundleRefusedError as exc:
            return BundleOutcome(
                kind="refused",
                version=current,
                offered_version=bundle.version,
                reason=exc.reason,
                message=str(exc),
            )
        notes: tuple[str, ...] = ()
        if bundle.surcharge_rules:
            notes = (
                f"{len(bundle.surcharge_rules)} surcharge rule(s) kept in {SIGNED_FILE_NAME}; "
                "surcharges come from the catalog in this version",
            )
        return self._write_and_check(bundle, text, data, current, notes)

    def _write_and_check(
        self,
        bundle: protocol.ConfigBundle,
        text: str,
        data: bytes,
        current: int,
        notes: tuple[str, ...],
    ) -> BundleOutcome:
        from firmware_config.loader import ConfigError, load_config

        path = self.bundle_path
        previous: bytes | None = None
        try:
            if path.exists():
                previous = path.read_bytes()
            write_atomic(path, text.encode("utf-8"))
        except OSError as exc:
            return BundleOutcome(
                kind="failed",
                version=current,
                offered_version=bundle.version,
                reason="local-disk",
                message=f"cannot replace {path}: {exc.strerror}",
            )
        try:
            loaded = load_config(self.config_dir, env=self.env)
            if self.start_check is not None:
                self.start_check(loaded)
        except ConfigError as exc:
            reason, message = "invalid", "; ".join(str(p) for p in exc.problems[:5])
        except Exception as exc:  # the hook decides what "does not start" means
            reason, message = "start-check", f"{type(exc).__name__}: {exc}"[:500]
        else:
            try:
                write_atomic(self.signed_path, data)
            except OSError as exc:
                logger.warning("sync_config_signed_copy_not_saved error=%s", exc.strerror)
            return BundleOutcome(
                kind="applied", version=bundle.version, offered_version=bundle.version, notes=notes
            )
        try:
            if previous is None:
                remove_file(path)
            else:
                write_atomic(path, previous)
        except OSError as exc:
            return BundleOutcome(
                kind="failed", version=0, offered_version=bundle.version, reason="rollback",
                message=f"{message}; and the previous file could not be restored: {exc.strerror}",
            )  # fmt: skip
        return BundleOutcome(
            kind="rolled-back",
            version=current,
            offered_version=bundle.version,
            reason=reason,
            message=message,
        )
