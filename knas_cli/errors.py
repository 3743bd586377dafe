"""The CLI's own error type, in a module of its own so that sub-commands and ``knas_cli.main``
both import it without importing each other."""

from __future__ import annotations

from knas_core.errors import InputError


class UsageError(InputError):
    """A user mistake detected by a command (a bad option value, a missing file); its message is
    shown as is, as one ``knas: error:`` line with exit status 2."""
