"""Who may write: read-only dashboards and the lab token.

* ``KNAS_READ_ONLY=1``: the whole dashboard is read-only (no submit, cancel or delete).
* ``?view=readonly`` in a link: that viewer's pages are read-only (what "share" copies). Once
  seen, the browser session stays read-only for the rest of the visit, on every page, whatever
  comes later (:func:`app.ui.sync_access` keeps it in ``st.session_state``).
* ``KNAS_LAB_TOKEN=...``: write actions need this token (typed into the sidebar, or carried
  by a ``?token=...`` link); without it every viewer is read-only. A link's token is taken
  once, kept for the browser session and removed from the address; a ``token`` parameter
  given more than once is refused (it grants nothing). Tokens compare in constant time.

The check runs when a write button is drawn *and* again when its action runs.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence

from knas_core.settings import Settings, get_settings, settings_from


def _settings(environ: Mapping[str, str] | None) -> Settings:
    """The process's settings, or those of ``environ`` (a mapping like ``os.environ``)."""
    return get_settings() if environ is None else settings_from(environ)


def env_read_only(environ: Mapping[str, str] | None = None) -> bool:
    """``KNAS_READ_ONLY``: the whole dashboard is read-only."""
    return _settings(environ).read_only


def lab_token(environ: Mapping[str, str] | None = None) -> str | None:
    """``KNAS_LAB_TOKEN``, or None when it is unset."""
    return _settings(environ).lab_token


def _values(params: Mapping[str, str | Sequence[str]], key: str) -> list[str]:
    value = params.get(key)
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def link_read_only(params: Mapping[str, str | Sequence[str]]) -> bool:
    """Whether a link's query asks for a read-only view (any ``view`` value ``readonly``)."""
    return "readonly" in _values(params, "view")


def link_token(params: Mapping[str, str | Sequence[str]]) -> str | None:
    """The token a link carries; ``None`` when it has none or gives ``token`` more than once."""
    values = _values(params, "token")
    return values[0] if len(values) == 1 else None


def token_matches(given: str | None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``given`` is the lab token (constant-time; False when no token is set)."""
    expected = lab_token(environ)
    if expected is None or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def can_write(params: Mapping[str, str | Sequence[str]], typed_token: str | None = None,
              environ: Mapping[str, str] | None = None, *, read_only: bool = False,
              tokens: Iterable[str | None] = ()) -> bool:
    """Whether write actions are offered and accepted for this viewer.

    ``params`` is the link's query (a value may be a list of repeated values); ``read_only``
    says the session has already been read-only; ``tokens`` are tokens the session holds."""
    if read_only or env_read_only(environ) or link_read_only(params):
        return False
    if lab_token(environ) is None:
        return True
    return any(token_matches(t, environ) for t in (typed_token, link_token(params), *tokens))


def read_only_query(params: Mapping[str, str]) -> str:
    """The query string of a read-only link to the same view (any token removed)."""
    from urllib.parse import urlencode

    kept = {k: v for k, v in params.items() if k not in ("token", "view")}
    return urlencode({**kept, "view": "readonly"})
