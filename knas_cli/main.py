"""Entry point of the ``knas`` command: every sub-command is a line of ``COMMANDS``.

Every expected failure (bad option, unknown proxy, malformed architecture, missing data) is an
:class:`~knas_core.errors.InputError` (or a missing file, or an unreachable service) and ends
with exit status 2 and one line ``knas: error: ...`` saying what to do; any other exception is
a bug or an outage: status 1 and one line (``--debug`` shows the traceback).

Start-up stays cheap: this module imports no command module and no heavy library (torch,
pandas, SQLAlchemy, Celery). A command's module is imported, and its options added, only when
that command is chosen, so ``knas --help`` and ``knas status`` do not pay for ``knas score``'s
imports (see benchmarks/startup.py).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NamedTuple

from knas_core.errors import InputError


class Command(NamedTuple):
    """A sub-command: its line in ``knas --help`` and where its options are defined."""

    help: str
    #: ``module:function``; ``function(parser)`` adds the options (and the ``run`` default).
    options: str
    #: Load the plugins (``$KNAS_PLUGINS``, entry points) before adding the options (choices
    #: and names may come from them).
    plugins: bool = True
    #: Register the programs promoted into the database as proxies before running.
    discovered: bool = False

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        if self.plugins:
            from knas_core.plugins import load_plugins

            try:  # user proxies/spaces ($KNAS_PLUGINS, entry points), before options are checked
                load_plugins()
            except InputError as exc:  # a plugin that fails to load, a bad KNAS_* variable: one line
                parser.exit(2, f"knas: error: {exc}\n")
        module, function = self.options.split(":")
        getattr(importlib.import_module(module), function)(parser)


#: The sub-commands, in the order ``knas --help`` lists them.
COMMANDS: dict[str, Command] = {
    "score": Command("score architectures with zero-cost proxies", "knas_cli.score:add_arguments",
                     discovered=True),
    "correlate": Command("Kendall/Spearman/top-10%% precision of scores vs accuracy",
                         "knas_cli.correlate:add_arguments"),
    "calibrate": Command("fit a few-shot ranking model on labelled architectures (proxy calibrated:NAME)",
                         "knas_cli.calibrate:add_arguments", discovered=True),
    "search": Command("run a search strategy in-process", "knas_cli.search:add_arguments", discovered=True),
    "evolve": Command("discover a proxy by genetic programming (EZNAS)", "knas_cli.evolve:add_arguments",
                      discovered=True),
    "worker": Command("run a Celery worker (scoring and/or training)",
                      "knas_cli.workers:add_worker_arguments"),
    "submit": Command("submit a search from a YAML/JSON config file",
                      "knas_cli.workers:add_submit_arguments"),
    # status/cancel load plugins only for a search without a result (tasks.api._best_so_far)
    "status": Command("progress of a search", "knas_cli.workers:add_status_arguments", plugins=False),
    "cancel": Command("stop a search (workers stop between architectures)",
                      "knas_cli.workers:add_cancel_arguments", plugins=False),
    "db": Command("database maintenance", "knas_cli.workers:add_db_arguments", plugins=False),
    "atlas": Command("export the stored scores as a score atlas file; import one",
                     "knas_cli.atlas:add_arguments", discovered=True),
    "web": Command("start the dashboard (Streamlit) on loopback", "knas_cli.web:add_web_arguments",
                   plugins=False),
    "up": Command("database upgrade, a worker on the embedded default and the dashboard",
                  "knas_cli.web:add_up_arguments", plugins=False),
    "data": Command("fetch full data sets; show which data is found where", "knas_cli.data:add_arguments",
                    plugins=False),
}

#: Failures that are the user's to fix: exit status 2 and the message as is. Every other
#: exception (a bare ValueError from deep inside included) is a bug: exit status 1.
USER_ERRORS = (InputError, FileNotFoundError, ConnectionError)


class _LazyCommands(argparse._SubParsersAction):
    """Sub-parsers that get their options only once chosen: until then each is a name and a
    help line, so listing them costs no import of their modules."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[str, Command] = {}

    def add_command(self, name: str, command: Command) -> None:
        self.add_parser(name, help=command.help)
        self._pending[name] = command

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        name = values[0]  # a valid name: argparse checked it against the choices before
        command = self._pending.pop(name, None)
        if command is not None:
            command.add_options(self._name_parser_map[name])
        super().__call__(parser, namespace, values, option_string)


def database_error_line(exc: Exception) -> str:
    """One line for a database error (SQLAlchemy's text carries the SQL and its parameters)."""
    from sqlalchemy import make_url

    from db.session import database_url

    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    text = reason[0] if reason else type(exc).__name__
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        where = make_url(database_url()).render_as_string(hide_password=True)
        return (f"the database {where} has no KNAS tables ({text}): a new, deleted or never "
                "migrated database; `knas db upgrade` creates them")
    return f"database error: {text} (rerun with --debug for details)"


def _is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLAlchemy's (looked up only if a command imported SQLAlchemy)."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)


def version_line() -> str:
    """``knas-studio <version> from <folder>``: the installed version and the folder its code
    is loaded from (a checkout for an editable install, site-packages for a wheel)."""
    from importlib.metadata import PackageNotFoundError, version
    from pathlib import Path

    try:
        number = version("knas-studio")
    except PackageNotFoundError:
        number = "unknown (not installed)"
    return f"knas-studio {number} from {Path(__file__).resolve().parent.parent}"


class _LazyVersion(argparse._VersionAction):
    """``--version``, whose line is looked up only when asked (the package metadata look-up
    costs more than the rest of the start-up)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        self.version = version_line()
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    """The ``knas`` parser; a sub-command's options are added when parsing reaches it."""
    parser = argparse.ArgumentParser(prog="knas", description="KNAS Studio: training-free NAS.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_LazyVersion,
                        help="print the version and the folder the code is loaded from")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    sub = parser.add_subparsers(action=_LazyCommands, dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub.add_command(name, command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if COMMANDS[args.command].discovered:
        from db.discovery import register_discovered_proxies

        register_discovered_proxies()  # programs promoted by `knas evolve --name` / the Proxy lab
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as exc:
        if args.debug:
            traceback.print_exc()
        print(f"knas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("knas: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for the user, traceback on --debug
        if args.debug:
            traceback.print_exc()
        if _is_database_error(exc):
            print(f"knas: error: {database_error_line(exc)}", file=sys.stderr)
        else:
            print(f"knas: error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
                  file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
