"""Layered configuration loading with provenance.

Theory of operation: the effective configuration is built from layers, each
overriding the ones before it, key by key:

1. built-in defaults (the field defaults of :class:`~firmware_config.settings.Settings`);
2. the hardware profile: the shipped ``firmware_config/profiles/<name>.toml``
   named by ``hardware_profile`` in ``local.toml`` or by
   ``LOBBYPAY_HARDWARE_PROFILE``, then ``<config_dir>/profile.toml`` (a site's own
   profile, which may refine the shipped one);
3. the central bundle: ``<config_dir>/central.d/bundle.toml``, the signed
   configuration bundle from central (limits, timeouts, offline policy) that the
   sync agent verified and wrote (:mod:`central_sync.agent.config_bundle`); its
   first line names its version, so its values show as "central bundle vN";
4. ``<config_dir>/override.d/*.toml``, sorted by file name (hidden files skipped);
5. ``<config_dir>/local.toml``;
6. environment variables ``LOBBYPAY_<SECTION>__<KEY>`` (``__`` separates nested
   names, for example ``LOBBYPAY_DEVICES__PRINTER__URL``).

A missing directory or file is an empty layer. Every leaf value remembers the
layer, file and line (or environment variable) that set it: that is what
``lobbypay config show`` prints. Validation happens once, on the merged result,
and *every* problem is collected — unreadable files, TOML syntax errors, unknown
keys, wrong types, bad values — each with its dotted key and file:line, so a
technician fixes a file in one pass instead of one error per run.

Values of secret fields never reach a problem message: messages are built from
pydantic's error type and message without the input value.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from firmware_config.errors import FirmwareConfigError
from firmware_config.settings import (
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    Settings,
    field_at,
    is_profile_name,
    section_model_at,
    setting_fields,
)
from firmware_config.tomlscan import Key, KeyLines, TomlScanError, scan_key_lines

DEFAULT_CONFIG_DIR = Path("/etc/lobbypay")
CONFIG_DIR_ENV = f"{ENV_PREFIX}CONFIG_DIR"
HARDWARE_PROFILE_ENV = f"{ENV_PREFIX}HARDWARE_PROFILE"
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"

FILE_BYTES_MAX = 1024 * 1024
"""Largest configuration file read; a bigger one is a problem, not a memory spike."""

OVERRIDE_FILES_MAX = 256
"""Most files read from ``override.d``."""

SourceKind = Literal["default", "profile", "central", "override", "local", "env"]

CENTRAL_DIR_NAME = "central.d"
BUNDLE_FILE_NAME = "bundle.toml"
BUNDLE_HEADER_RE = re.compile(r"^# central bundle v([0-9]{1,18})\b")
"""First line of the bundle layer file: ``# central bundle v<version> ...``."""

_TOML_POSITION_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_EOF_RE = re.compile(r"\s*\(at end of document\)\s*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """Where a value (or a problem) came from."""

    kind: SourceKind
    path: Path | None = None
    line: int | None = None
    env_var: str | None = None
    label: str | None = None
    """What the layer is, where a path alone does not say (``central bundle v7``)."""

    def __str__(self) -> str:
        if self.env_var is not None:
            return f"env {self.env_var}"
        if self.path is not None:
            where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
            return f"{self.label} ({where})" if self.label else where
        return self.kind

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description (for ``config show --json``)."""
        data: dict[str, Any] = {
            "kind": self.kind,
            "path": str(self.path) if self.path is not None else None,
            "line": self.line,
            "env_var": self.env_var,
        }
        if self.label is not None:
            data["label"] = self.label
        return data


DEFAULT_SOURCE = Source(kind="default")


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong with the configuration."""

    key: str
    """Dotted key (``journal.offline_payments_max``); empty for a whole-file problem."""

    message: str
    """What is wrong, never including a secret value."""

    source: Source | None = None
    """The file:line or environment variable; None when no layer set the key."""

    def __str__(self) -> str:
        where = str(self.source) if self.source is not None else "<defaults>"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(FirmwareConfigError):
    """The configuration has problems; all of them are in :attr:`problems`."""

    next_step = (
        "fix each problem listed (file:line: key: message), then run `lobbypay config validate`"
    )

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        assert problems, "ConfigError without problems"
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """The effective settings and where each of their values came from."""

    settings: Settings
    provenance: dict[str, Source]
    """Dotted key of every leaf setting → the layer that set it (``default`` if none)."""

    config_dir: Path
    files: tuple[Path, ...] = ()
    """Files that were read, in layer order."""

    def source_of(self, key: str) -> Source:
        """Where the value of dotted ``key`` came from."""
        return self.provenance[key]


@dataclass(slots=True)
class _Layer:
    """One parsed layer: its values and how to locate each of its keys."""

    kind: SourceKind
    data: dict[str, Any]
    path: Path | None = None
    lines: KeyLines = field(default_factory=KeyLines)
    env_vars: dict[Key, str] = field(default_factory=dict)
    label: str | None = None

    def source_of(self, key: Key) -> Source:
        if self.path is None:
            return Source(kind=self.kind, env_var=self.env_vars.get(key))
        return Source(
            kind=self.kind, path=self.path, line=self.lines.line_of(key), label=self.label
        )


def load_config(
    config_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Load, layer and validate the configuration.

    ``config_dir`` defaults to ``$LOBBYPAY_CONFIG_DIR`` or ``/etc/lobbypay``;
    ``env`` defaults to :data:`os.environ`. Raises :class:`ConfigError` listing
    every problem found.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    config_dir = Path(config_dir or environ.get(CONFIG_DIR_ENV) or DEFAULT_CONFIG_DIR)
    problems: list[Problem] = []

    local = _read_toml_file(config_dir / "local.toml", "local", problems)
    layers: list[_Layer] = []
    profile_name, profile_source = _selected_profile(local, environ)
    if profile_name is not None and is_profile_name(profile_name):
        shipped = PROFILES_DIR / f"{profile_name}.toml"
        if shipped.is_file():
            layers.extend(_layer_list(_read_toml_file(shipped, "profile", problems)))
        else:
            problems.append(
                Problem(
                    key="hardware_profile",
                    source=profile_source,
                    message="unknown hardware profile; shipped profiles: "
                    + ", ".join(available_profiles()),
                )
            )
    layers.extend(_layer_list(_read_toml_file(config_dir / "profile.toml", "profile", problems)))
    layers.extend(_layer_list(_read_bundle_layer(bundle_path(config_dir), problems)))
    layers.extend(_read_override_dir(config_dir / "override.d", problems))
    layers.extend(_layer_list(local))
    layers.append(_env_layer(environ, problems))

    merged, provenance, table_sources = _merge(layers, problems)
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        problems.extend(_validation_problems(exc, provenance, table_sources))
    if problems:
        raise ConfigError(tuple(sorted(problems, key=_problem_order)))
    assert settings is not None
    return LoadedConfig(
        settings=settings,
        provenance={
            item.key: provenance.get(tuple(item.key.split(".")), DEFAULT_SOURCE)
            for item in setting_fields()
        },
        config_dir=config_dir,
        files=tuple(layer.path for layer in layers if layer.path is not None),
    )


_KIND_ORDER: dict[SourceKind, int] = {
    "profile": 0,
    "central": 1,
    "override": 2,
    "local": 3,
    "env": 4,
    "default": 5,
}


def _problem_order(problem: Problem) -> tuple[int, str, int]:
    """Problems in layer order, then file order, so the list reads like the files."""
    source = problem.source
    if source is None:
        return (len(_KIND_ORDER), "", 0)
    return (_KIND_ORDER[source.kind], str(source.path or source.env_var or ""), source.line or 0)


def available_profiles() -> tuple[str, ...]:
    """Names of the hardware profiles shipped with this version."""
    return tuple(sorted(p.stem for p in PROFILES_DIR.glob("*.toml") if is_profile_name(p.stem)))


# -- layers ---------------------------------------------------------------


def bundle_path(config_dir: Path) -> Path:
    """Where the central bundle layer lives in ``config_dir``."""
    return config_dir / CENTRAL_DIR_NAME / BUNDLE_FILE_NAME


def bundle_version(text: str) -> int | None:
    """The version named on the first line of a bundle layer file, or None."""
    match = BUNDLE_HEADER_RE.match(text)
    return int(match.group(1)) if match else None


def _read_bundle_layer(path: Path, problems: list[Problem]) -> _Layer | None:
    layer = _read_toml_file(path, "central", problems)
    if layer is None:
        return None
    try:
        first = _read_regular_file(path, 128).decode("utf-8", "replace")
    except (OSError, _NotRegularFileError):
        first = ""
    version = bundle_version(first)
    if version is None:
        problems.append(
            Problem(
                key="",
                source=Source(kind="central", path=path, line=1),
                message="not a central bundle (its first line must be '# central bundle vN');"
                " let the sync agent write it, or remove it",
            )
        )
        return None
    layer.label = f"central bundle v{version}"
    return layer


def _layer_list(layer: _Layer | None) -> list[_Layer]:
    return [] if layer is None else [layer]


def _read_toml_file(path: Path, kind: SourceKind, problems: list[Problem]) -> _Layer | None:
    """Parse one TOML file; a missing file is None, any other trouble a problem."""
    here = Source(kind=kind, path=path)
    try:
        raw = _read_regular_file(path, FILE_BYTES_MAX + 1)
    except FileNotFoundError:
        return None
    except _NotRegularFileError as exc:
        problems.append(Problem(key="", source=here, message=str(exc)))
        return None
    except OSError as exc:
        problems.append(Problem(key="", source=here, message=f"cannot read: {exc.strerror}"))
        return None
    if len(raw) > FILE_BYTES_MAX:
        problems.append(Problem(key="", source=here, message=f"larger than {FILE_BYTES_MAX} bytes"))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(
            Problem(
                key="",
                source=Source(kind=kind, path=path, line=raw[: exc.start].count(b"\n") + 1),
                message="not valid UTF-8 text",
            )
        )
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message, error_line = _toml_error_position(str(exc), text)
        problems.append(
            Problem(
                key="",
                source=Source(kind=kind, path=path, line=error_line),
                message=f"TOML syntax error: {message}",
            )
        )
        return None
    except RecursionError:
        problems.append(Problem(key="", source=here, message="TOML nested too deeply"))
        return None
    try:
        lines = scan_key_lines(text)
    except TomlScanError:
        # tomllib accepted the file, so its values are good; only the line
        # numbers are unknown. Report file names without lines rather than fail.
        lines = KeyLines()
    return _Layer(kind=kind, data=data, path=path, lines=lines)


class _NotRegularFileError(Exception):
    pass


def _read_regular_file(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file.

    Opened non-blocking and checked before reading: a FIFO or device named
    local.toml must be a problem, not a hang.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise _NotRegularFileError("is a directory, expected a TOML file")
        if not stat.S_ISREG(mode):
            raise _NotRegularFileError("is not a regular file")
        chunks: list[bytes] = []
        remaining = limit
        while remaining > 0:
            chunk = os.read(fd, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _toml_error_position(message: str, text: str) -> tuple[str, int | None]:
    match = _TOML_POSITION_RE.search(message)
    if match:
        return message[: match.start()], int(match.group(1))
    match = _TOML_EOF_RE.search(message)
    if match:
        return message[: match.start()], text.count("\n") + 1
    return message, None


def _read_override_dir(directory: Path, problems: list[Problem]) -> list[_Layer]:
    try:
        # Hidden files are editors' and package managers' leftovers, not layers.
        names = sorted(
            p.name
            for p in directory.iterdir()
            if p.suffix == ".toml" and not p.name.startswith(".")
        )
    except FileNotFoundError:
        return []
    except OSError as exc:
        problems.append(
            Problem(
                key="",
                source=Source(kind="override", path=directory),
                message=f"cannot list: {exc.strerror}",
            )
        )
        return []
    if len(names) > OVERRIDE_FILES_MAX:
        problems.append(
            Problem(
                key="",
                source=Source(kind="override", path=directory),
                message=f"more than {OVERRIDE_FILES_MAX} files; only the first ones were read",
            )
        )
        names = names[:OVERRIDE_FILES_MAX]
    layers: list[_Layer] = []
    for name in names:
        layers.extend(_layer_list(_read_toml_file(directory / name, "override", problems)))
    return layers


def _selected_profile(
    local: _Layer | None, environ: Mapping[str, str]
) -> tuple[str | None, Source | None]:
    """The hardware profile name and where it was chosen; None if none is."""
    if HARDWARE_PROFILE_ENV in environ:
        name = environ[HARDWARE_PROFILE_ENV]
        return (name or None), Source(kind="env", env_var=HARDWARE_PROFILE_ENV)
    if local is not None:
        value = local.data.get("hardware_profile")
        if isinstance(value, str) and value:
            return value, local.source_of(("hardware_profile",))
    return None, None


def _env_layer(environ: Mapping[str, str], problems: list[Problem]) -> _Layer:
    """``LOBBYPAY_<SECTION>__<KEY>`` variables as a layer (plain ``LOBBYPAY_<KEY>``
    for top-level settings such as ``LOBBYPAY_HARDWARE_PROFILE``)."""
    layer = _Layer(kind="env", data={})
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :]
        if ENV_NESTED_DELIMITER in rest:
            parts = tuple(part.lower() for part in rest.split(ENV_NESTED_DELIMITER))
            if any(part == "" for part in parts):
                problems.append(
                    Problem(
                        key=".".join(parts),
                        source=Source(kind="env", env_var=name),
                        message="malformed variable name (empty part between '__')",
                    )
                )
                continue
        else:
            # Only top-level scalar settings; other LOBBYPAY_* variables (like
            # LOBBYPAY_CONFIG_DIR) belong to someone else.
            info = field_at((rest.lower(),))
            if info is None or section_model_at((rest.lower(),)) is not None:
                continue
            parts = (rest.lower(),)
        _set_path(layer.data, parts, _coerce_env_value(parts, environ[name]))
        layer.env_vars[parts] = name
    return layer


def _coerce_env_value(parts: Key, raw: str) -> Any:
    """Turn an environment string into the type the field expects, where unambiguous.

    Integers are strict in the model (a file's ``"10"`` is a type error), so the
    string from the environment is converted here; if it does not convert, the
    string is passed on and validation reports the problem with the variable.
    """
    info = field_at(parts)
    if info is None:
        return raw
    annotation = info.annotation
    optional = _is_optional(annotation)
    if optional and raw == "":
        return None
    if annotation is int:
        try:
            return int(raw.strip(), 10)
        except ValueError:
            return raw
    if annotation is float:
        try:
            return float(raw.strip())
        except ValueError:
            return raw
    if getattr(annotation, "__origin__", None) is list:
        stripped = raw.strip()
        if stripped.startswith("["):
            try:
                return json.loads(stripped)
            except json.JSONDecodeError:
                return raw
        return [item.strip() for item in stripped.split(",") if item.strip()]
    return raw


def _is_optional(annotation: Any) -> bool:
    return type(None) in getattr(annotation, "__args__", ())


# -- merging --------------------------------------------------------------


def _leaves(data: Mapping[str, Any], prefix: Key = ()) -> Iterator[tuple[Key, Any]]:
    """Leaf values (anything but a table) of a parsed TOML document; empty tables too."""
    for name, value in data.items():
        key = (*prefix, name)
        if isinstance(value, dict):
            if value:
                yield from _leaves(value, key)
            else:
                yield key, {}
        else:
            yield key, value


def _tables(data: Mapping[str, Any], prefix: Key = ()) -> Iterator[Key]:
    for name, value in data.items():
        if isinstance(value, dict):
            key = (*prefix, name)
            yield key
            yield from _tables(value, key)


def _set_path(target: dict[str, Any], key: Key, value: Any) -> None:
    node = target
    for part in key[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    if isinstance(value, dict) and isinstance(node.get(key[-1]), dict):
        return  # an empty table adds nothing to an existing one
    node[key[-1]] = value


def _merge(
    layers: list[_Layer], problems: list[Problem]
) -> tuple[dict[str, Any], dict[Key, Source], dict[Key, Source]]:
    """Deep-merge the layers key by key; returns (values, leaf sources, table sources)."""
    merged: dict[str, Any] = {}
    provenance: dict[Key, Source] = {}
    table_sources: dict[Key, Source] = {}
    for layer in layers:
        for table in _tables(layer.data):
            table_sources[table] = layer.source_of(table)
        for key, value in _leaves(layer.data):
            if key == ("hardware_profile",) and layer.kind not in ("local", "env"):
                problems.append(
                    Problem(
                        key="hardware_profile",
                        source=layer.source_of(key),
                        message=f"may only be set in local.toml or {HARDWARE_PROFILE_ENV}",
                    )
                )
                continue
            _set_path(merged, key, value)
            if isinstance(value, dict):
                continue  # an empty table sets no value
            # A value replacing a whole table (or a table replacing a value)
            # takes the provenance of everything beneath it with it.
            for old in [k for k in provenance if k[: len(key)] == key or key[: len(k)] == k]:
                del provenance[old]
            provenance[key] = layer.source_of(key)
    return merged, provenance, table_sources


# -- validation problems ----------------------------------------------------


def _validation_problems(
    exc: ValidationError,
    provenance: dict[Key, Source],
    table_sources: dict[Key, Source],
) -> list[Problem]:
    problems: list[Problem] = []
    order = {key: index for index, key in enumerate(provenance)}
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = error["loc"]
        names: Key = tuple(str(part) for part in loc if isinstance(part, str))
        display = "".join(
            f"[{part}]" if isinstance(part, int) else (f".{part}" if i else str(part))
            for i, part in enumerate(loc)
        )
        problems.append(
            Problem(
                key=display,
                source=_locate(names, provenance, table_sources, order),
                message=_problem_message(error["type"], error["msg"], names),
            )
        )
    return problems


def _locate(
    key: Key,
    provenance: dict[Key, Source],
    table_sources: dict[Key, Source],
    order: dict[Key, int],
) -> Source | None:
    """The best place to point a technician at for a problem with ``key``."""
    if key in provenance:
        return provenance[key]
    if key in table_sources:
        return table_sources[key]
    # A key no layer set (a default that conflicts with a sibling, such as a
    # device url that a driver choice requires): point at the sibling set last,
    # which is what made the default wrong, or else at the enclosing table.
    parent = key[:-1]
    siblings = [k for k in provenance if k[: len(parent)] == parent and len(k) > len(parent)]
    if parent and siblings:
        return provenance[max(siblings, key=lambda k: order[k])]
    for end in range(len(key), 0, -1):
        if key[:end] in table_sources:
            return table_sources[key[:end]]
    return None


def _problem_message(error_type: str, message: str, names: Key) -> str:
    if error_type == "extra_forbidden":
        model = section_model_at(names[:-1])
        hint = ""
        if model is not None and names:
            close = difflib.get_close_matches(names[-1], list(model.model_fields), n=1)
            if close:
                hint = f"; did you mean {'.'.join((*names[:-1], close[0]))!r}?"
        return f"unknown setting{hint}"
    if error_type == "model_type" and section_model_at(names) is not None:
        return f"must be a table ([{'.'.join(names)}])"
    if error_type == "path_type":
        return 'must be a path, written as a string such as "/var/lib/lobbypay"'
    if error_type == "value_error":
        return message.removeprefix("Value error, ")
    return message
