"""Entry point of the ``knas`` command: sub-commands register themselves in ``COMMANDS``.

Every expected failure (bad option, unknown proxy, malformed architecture, missing data)
ends with exit status 2 and one line ``knas: error: ...`` saying what to do; an unexpected
one with status 1 and one line (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from db.session import DatabaseFileGoneError
from knas_cli import correlate, data, evolve, score, search, web, workers
from knas_core.device import DeviceUnavailableError
from knas_core.errors import InputError
from knas_core.paths import DataNotFoundError
from knas_core.registry import UnknownNameError
from knas_core.spaces.base import InvalidArchitectureError

COMMANDS = (score, correlate, search, evolve, workers, web, data)
#: Commands that look proxies up by name (and so load the programs promoted into the database).
PROXY_COMMANDS = ("score", "search", "evolve")


class UsageError(Exception):
    """A user mistake detected by a command; its message is shown as is."""


EXPECTED = (UsageError, InputError, UnknownNameError, InvalidArchitectureError, DataNotFoundError,
            DeviceUnavailableError, FileNotFoundError, ValueError, ConnectionError, DatabaseFileGoneError)


def database_error_line(exc: SQLAlchemyError) -> str:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="knas", description="KNAS Studio: training-free NAS.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=version_line(),
                        help="print the version and the folder the code is loaded from")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from knas_core.plugins import load_plugins

    load_plugins()  # user proxies/spaces from $KNAS_PLUGINS, before options are checked
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in PROXY_COMMANDS:
        from db.discovery import register_discovered_proxies

        register_discovered_proxies()  # programs promoted by `knas evolve --name` / the Proxy lab
    try:
        return int(args.run(args) or 0)
    except EXPECTED as exc:
        if args.debug:
            traceback.print_exc()
        print(f"knas: error: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"knas: error: {database_error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("knas: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for the user, traceback on --debug
        if args.debug:
            traceback.print_exc()
        print(f"knas: error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
