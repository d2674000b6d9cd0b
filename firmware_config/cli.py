"""`lobbypay config ...` and `lobbypay identity ...`: the technician's view of a box.

Only the standard library is imported at the top (see
:mod:`firmware_config.dispatch`); each handler imports what it needs.

* ``config show [--json] [--config-dir DIR]``: every effective setting with the
  file:line or environment variable it came from; secrets are printed as ``***``.
* ``config validate [--config-dir DIR]``: every problem as
  ``path:line: key: message`` and exit 2, or "configuration OK" and exit 0.
* ``identity init [--key PATH | --config-dir DIR] [--force]``: make the
  terminal's Ed25519 key pair once.
* ``identity show [--json] [--key PATH | --config-dir DIR]``: terminal id, public
  key, fingerprint and key path (never the private key).
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware_config.cli_common import (
    add_config_dir_argument,
    load_config_or_exit,
    message,
    print_problems,
)

if TYPE_CHECKING:
    from firmware_config.identity import Identity, IdentityError
    from firmware_config.loader import LoadedConfig

# Settings left unset that resolve to a path under terminal.data_dir, and the
# Settings property that resolves them.
_DERIVED_PATHS = {
    "identity.key_path": "identity_key_path",
    "journal.path": "journal_path",
    "deployment.card_hash_key_path": "card_hash_key_path",
}


def _help_when_bare(parser: argparse.ArgumentParser) -> None:
    """``lobbypay config`` with no subcommand prints its help and exits 2."""

    def show_help(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    parser.set_defaults(func=show_help)


# -- config -----------------------------------------------------------------


def add_config_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``lobbypay config`` and its subcommands."""
    parser = subparsers.add_parser(
        "config",
        help="show and validate the layered configuration",
        description=(
            "Inspect the configuration: built-in defaults, then the hardware profile, "
            "then override.d/*.toml, then local.toml, then LOBBYPAY_<SECTION>__<KEY> "
            "environment variables, each overriding the ones before."
        ),
    )
    _help_when_bare(parser)
    sub = parser.add_subparsers(dest="config_command", metavar="SUBCOMMAND")

    show = sub.add_parser(
        "show",
        help="print every effective setting and where it came from",
        description=(
            "Print every effective setting with the file:line or environment variable "
            "that set it ('default' for built-in values). Secrets are shown as ***."
        ),
    )
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_config_dir_argument(show)
    show.set_defaults(func=_config_show)

    validate = sub.add_parser(
        "validate",
        help="check the configuration and report every problem",
        description=(
            "Load and check the configuration. Prints every problem as "
            "'path:line: key: message' and exits 2, or prints 'configuration OK' and exits 0."
        ),
    )
    add_config_dir_argument(validate)
    validate.set_defaults(func=_config_validate)

    describe = sub.add_parser(
        "describe",
        help="list every setting with its type, default and meaning",
        description=(
            "List every setting: dotted key, type, built-in default, environment "
            "variable and what it means. Give KEYs (or section prefixes) to list only those."
        ),
    )
    describe.add_argument("keys", nargs="*", metavar="KEY", help="setting or section to describe")
    describe.add_argument("--json", action="store_true", help="print JSON instead of text")
    describe.set_defaults(func=_config_describe)


def _render_value(value: object) -> str:
    from pydantic import SecretStr

    from firmware_config.settings import SECRET_MASK

    if isinstance(value, SecretStr):
        return SECRET_MASK
    if value is None:
        return "(unset)"
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_render_value(item) for item in value) + "]"
    return str(value)


def _json_value(value: object) -> Any:
    from pydantic import SecretStr

    from firmware_config.settings import SECRET_MASK

    if isinstance(value, SecretStr):
        return SECRET_MASK
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return value


def _config_show(args: argparse.Namespace) -> int:
    from firmware_config.settings import effective_values

    loaded = load_config_or_exit(args)
    values = effective_values(loaded.settings)
    derived = {key: getattr(loaded.settings, prop) for key, prop in _DERIVED_PATHS.items()}
    if args.json:
        document = {
            "config_dir": str(loaded.config_dir),
            "files": [str(path) for path in loaded.files],
            "settings": {
                key: {
                    "value": _json_value(value),
                    "source": loaded.provenance[key].to_json(),
                }
                for key, value in values.items()
            },
            "derived": {key: str(path) for key, path in derived.items()},
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    print(f"# configuration directory: {loaded.config_dir}")
    for path in loaded.files:
        print(f"# read: {path}")
    rows: list[tuple[str, str]] = []
    for key, value in values.items():
        text = f"{key} = {_render_value(value)}"
        if value is None and key in derived:
            text += f"  (→ {derived[key]})"
        rows.append((text, str(loaded.provenance[key])))
    width = min(max(len(text) for text, _ in rows), 72)
    for text, source in rows:
        print(f"{text.ljust(width)}  # {source}")
    return 0


def _config_validate(args: argparse.Namespace) -> int:
    from firmware_config.loader import ConfigError, load_config

    try:
        load_config(args.config_dir)
    except ConfigError as exc:
        print_problems(exc.problems, sys.stdout)
        return 2
    print(message("config_ok"))
    return 0


def _type_name(annotation: Any) -> str:
    """A technician-readable name for a field's type."""
    import typing

    from pydantic import SecretStr

    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(json.dumps(arg) for arg in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(names) + (" (may be unset)" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if annotation is SecretStr:
        return "secret string"
    if annotation is Path:
        return "absolute path"
    if annotation in (int, float, str):
        return {int: "integer", float: "number", str: "string"}[annotation]
    return str(annotation)


def _config_describe(args: argparse.Namespace) -> int:
    from firmware_config.settings import (
        ENV_NESTED_DELIMITER,
        ENV_PREFIX,
        SECRET_MASK,
        Settings,
        effective_values,
        setting_fields,
    )

    defaults = effective_values(Settings())
    wanted: list[str] = args.keys
    rows: list[dict[str, Any]] = []
    for item in setting_fields():
        if wanted and not any(item.key == w or item.key.startswith(w + ".") for w in wanted):
            continue
        default = SECRET_MASK if item.secret else _json_value(defaults[item.key])
        env_var = ENV_PREFIX + item.key.upper().replace(".", ENV_NESTED_DELIMITER)
        if "." not in item.key:
            env_var = ENV_PREFIX + item.key.upper()
        rows.append(
            {
                "key": item.key,
                "type": _type_name(item.info.annotation),
                "default": default,
                "env_var": env_var,
                "secret": item.secret,
                "description": item.description,
                "default_text": _render_value(defaults[item.key]),
            }
        )
    if wanted and not rows:
        print(f"no such setting: {' '.join(wanted)}", file=sys.stderr)
        return 2
    if args.json:
        for row in rows:
            del row["default_text"]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for row in rows:
        print(row["key"])
        print(f"    {row['description']}")
        print(f"    type: {row['type']}; default: {row['default_text']}")
        print(f"    env: {row['env_var']}")
    return 0


# -- identity ---------------------------------------------------------------


def _add_key_location(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--key",
        type=Path,
        default=None,
        metavar="PATH",
        help="identity key file (default: identity.key_path from the configuration)",
    )
    group.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="configuration directory (default: $LOBBYPAY_CONFIG_DIR or /etc/lobbypay)",
    )


def add_identity_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``lobbypay identity`` and its subcommands."""
    parser = subparsers.add_parser(
        "identity",
        help="create and show the terminal's Ed25519 identity key",
        description=(
            "The terminal's identity is an Ed25519 key pair made once at provisioning. "
            "The terminal id is derived from the public key; the private key file must "
            "be mode 0600 and owned by the service user."
        ),
    )
    _help_when_bare(parser)
    sub = parser.add_subparsers(dest="identity_command", metavar="SUBCOMMAND")

    init = sub.add_parser(
        "init",
        help="create the identity key (once)",
        description=(
            "Create the terminal's Ed25519 key pair, mode 0600. Refuses to replace an "
            "existing key unless --force is given (a new key needs a new enrollment)."
        ),
    )
    _add_key_location(init)
    init.add_argument(
        "--force", action="store_true", help="replace an existing key (re-enrollment needed)"
    )
    init.add_argument("--json", action="store_true", help="print JSON instead of text")
    init.set_defaults(func=_identity_init)

    show = sub.add_parser(
        "show",
        help="print the terminal id, public key and fingerprint",
        description=(
            "Print the terminal id, the public key (hex), its fingerprint and the key "
            "file's path. The private key is never printed."
        ),
    )
    _add_key_location(show)
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(func=_identity_show)


def _key_path(args: argparse.Namespace) -> Path:
    if args.key is not None:
        return Path(args.key)
    loaded: LoadedConfig = load_config_or_exit(args)
    return loaded.settings.identity_key_path


def _print_identity(identity: Identity, as_json: bool) -> None:
    document = {
        "terminal_id": identity.terminal_id,
        "public_key": identity.public_key_hex,
        "fingerprint": identity.fingerprint,
        "key_path": str(identity.key_path),
    }
    if as_json:
        print(json.dumps(document, indent=2))
        return
    width = max(len(name) for name in document)
    for name, value in document.items():
        print(f"{name.ljust(width)}  {value}")


def _report_identity_error(exc: IdentityError) -> int:
    print(message("error", message=str(exc)), file=sys.stderr)
    if exc.next_step:
        print(message("next_step", step=exc.next_step), file=sys.stderr)
    return 2


def _identity_init(args: argparse.Namespace) -> int:
    from firmware_config.identity import IdentityError, generate_identity

    key_path = _key_path(args)
    replacing = args.force and key_path.exists()
    try:
        identity = generate_identity(key_path, force=args.force)
    except IdentityError as exc:
        return _report_identity_error(exc)
    print(message("identity_replaced" if replacing else "identity_created"), file=sys.stderr)
    _print_identity(identity, args.json)
    return 0


def _identity_show(args: argparse.Namespace) -> int:
    from firmware_config.identity import IdentityError, load_identity

    key_path = _key_path(args)
    try:
        identity = load_identity(key_path)
    except IdentityError as exc:
        return _report_identity_error(exc)
    _print_identity(identity, args.json)
    return 0
