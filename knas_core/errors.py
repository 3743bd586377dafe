"""Error types shared by the library and its front ends.

:class:`InputError` marks a mistake in what the user asked for (a field out of range, an unknown
name, a missing file). Its message says what is wrong in the library's own words (field names,
not command-line flags); the CLI shows it as one ``knas: error:`` line with exit status 2, the
dashboard as a form message. Any other exception is a bug or an outage and is reported as such.
"""

from __future__ import annotations


class InputError(Exception):
    """A mistake in the user's input; ``str()`` is the message to show, as is."""


class Cancelled(Exception):
    """A run was asked to stop (its cancel flag was seen between architectures, generations or
    training steps). Progress callbacks raise it; the code that started the run catches it and
    records the run as cancelled."""


class ConfigError(InputError, ValueError):
    """An invalid run configuration; ``str()`` is one line per problem, each naming its field.

    ``problems`` keeps the (field, message) pairs so a front end can put each message beside
    its own field (the CLI names the flag, a form the widget)."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems: list[tuple[str, str]] = problems or []


class DataFileError(InputError, ValueError):
    """A file the user gave (score records, an accuracy table, images) whose content is not
    what it should be; the message names the file and the problem."""
