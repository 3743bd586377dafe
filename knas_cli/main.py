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

from knas_cli import correlate, data, evolve, score, search, web, workers
from knas_core.device import DeviceUnavailableError
from knas_core.paths import DataNotFoundError
from knas_core.registry import UnknownNameError
from knas_core.spaces.base import InvalidArchitectureError

COMMANDS = (score, correlate, search, evolve, workers, web, data)
#: Commands that look proxies up by name (and so load the programs promoted into the database).
PROXY_COMMANDS = ("score", "search", "evolve")


class UsageError(Exception):
    """A user mistake detected by a command; its message is shown as is."""


EXPECTED = (UsageError, UnknownNameError, InvalidArchitectureError, DataNotFoundError,
            DeviceUnavailableError, FileNotFoundError, ValueError, ConnectionError)


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
