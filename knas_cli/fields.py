"""The run configs' field names in the words of the ``knas`` command: its flags.

A command builds the config from its options and validates it with :func:`parse_config`;
a :class:`~knas_core.errors.ConfigError` comes back with each field replaced by the command's
flag (``archs: must be at least 3, got 2`` -> ``--archs: must be at least 3, got 2``), which
``knas`` prints as one ``knas: error:`` line with exit status 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from knas_core.config import RunConfig, config_error
from knas_core.errors import ConfigError

T = TypeVar("T", bound=RunConfig)


def flag_of(field: str, message: str, flags: Mapping[str, str]) -> tuple[str, str]:
    """``(flag, message)`` for a problem of ``field``. A message that names a sub-field first
    (``strategy_options``: ``steps: must be ...``) goes to that sub-field's flag when there is
    one (``strategy_options.steps`` -> ``--steps``); a field without a flag keeps its name."""
    head, sep, rest = message.partition(": ")
    if sep and f"{field}.{head}" in flags:
        return flags[f"{field}.{head}"], rest
    return flags.get(field, field), message


def flag_error(exc: ConfigError, flags: Mapping[str, str]) -> ConfigError:
    """``exc`` with its fields replaced by ``flags`` (field name -> flag)."""
    if not exc.problems:
        return exc
    return config_error([flag_of(field, message, flags) for field, message in exc.problems])


def parse_config(model: type[T], raw: Mapping[str, Any], flags: Mapping[str, str]) -> T:
    """``model.parse(raw)``; its :class:`ConfigError` names the command's flags."""
    try:
        return model.parse(raw)
    except ConfigError as exc:
        raise flag_error(exc, flags) from None
