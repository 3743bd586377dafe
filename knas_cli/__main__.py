"""``python -m knas_cli ...`` runs the ``knas`` command (used to start child processes)."""

import sys

from knas_cli.main import main

sys.exit(main())
