"""Who may write: read-only dashboards and the lab token.

* ``KNAS_READ_ONLY=1``: the whole dashboard is read-only (no submit, cancel or delete).
* ``?view=readonly`` in a link: that viewer's pages are read-only (what "share" copies).
* ``KNAS_LAB_TOKEN=...``: write actions need this token (typed into the sidebar, or carried
  by a ``?token=...`` link); without it every viewer is read-only.

The check runs when a write button is drawn *and* again when its action runs.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

READ_ONLY_VALUES = ("1", "true", "yes", "on")


def env_read_only(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("KNAS_READ_ONLY", "").strip().lower() in READ_ONLY_VALUES


def lab_token(environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return env.get("KNAS_LAB_TOKEN") or None


def can_write(params: Mapping[str, str], typed_token: str | None = None,
              environ: Mapping[str, str] | None = None) -> bool:
    """Whether write actions are offered and accepted for this viewer."""
    if env_read_only(environ) or params.get("view", "") == "readonly":
        return False
    expected = lab_token(environ)
    if expected is None:
        return True
    given = typed_token or params.get("token") or ""
    return hmac.compare_digest(given.encode(), expected.encode())


def read_only_query(params: Mapping[str, str]) -> str:
    """The query string of a read-only link to the same view (any token removed)."""
    from urllib.parse import urlencode

    kept = {k: v for k, v in params.items() if k not in ("token", "view")}
    return urlencode({**kept, "view": "readonly"})
