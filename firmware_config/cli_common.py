"""Pieces every `lobbypay` subcommand shares: ``--config-dir`` and loading the config.

Imports only the standard library at import time (the dispatcher imports every
command module to build ``lobbypay --help``); the loader is imported when a
command actually runs.

Technician-facing lines come in Russian and English; the language follows the
locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``): ``ru*`` gives Russian, anything
else English.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from firmware_config.loader import LoadedConfig, Problem

MESSAGES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "config_ok": "configuration OK",
        "problems_found": "{count} configuration problem(s) found",
        "next_step": "next step: {step}",
        "error": "error: {message}",
        "identity_created": "identity created",
        "identity_replaced": "identity replaced: the terminal must be enrolled again",
    },
    "ru": {
        "config_ok": "конфигурация в порядке",
        "problems_found": "найдено проблем в конфигурации: {count}",
        "next_step": "что делать: {step}",
        "error": "ошибка: {message}",
        "identity_created": "ключ терминала создан",
        "identity_replaced": "ключ терминала заменён: терминал нужно зарегистрировать заново",
    },
}


def language(env: Mapping[str, str] | None = None) -> str:
    """``"ru"`` or ``"en"``, from the locale variables (first one set wins, like libc)."""
    environ = os.environ if env is None else env
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return "ru" if value.lower().startswith("ru") else "en"
    return "en"


def message(key: str, env: Mapping[str, str] | None = None, **fields: object) -> str:
    """A technician-facing line in the locale's language."""
    return MESSAGES[language(env)][key].format(**fields)


def add_config_dir_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--config-dir DIR`` (default ``$LOBBYPAY_CONFIG_DIR`` or ``/etc/lobbypay``)."""
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="configuration directory (default: $LOBBYPAY_CONFIG_DIR or /etc/lobbypay)",
    )


def print_problems(problems: Iterable[Problem], file: TextIO) -> int:
    """Print each problem as ``path:line: key: message`` and a count; return the count."""
    count = 0
    for problem in problems:
        print(problem, file=file)
        count += 1
    print(message("problems_found", count=count), file=file)
    return count


def load_config_or_exit(args: argparse.Namespace) -> LoadedConfig:
    """Load the configuration named by ``args.config_dir``; on problems print them
    to stderr and exit with status 2."""
    from firmware_config.loader import ConfigError, load_config

    try:
        return load_config(getattr(args, "config_dir", None))
    except ConfigError as exc:
        print_problems(exc.problems, sys.stderr)
        raise SystemExit(2) from None
