"""User text inside Markdown: names, notes, error messages, paths and architecture strings come
from the store or from a link, and Streamlit renders most text (subheaders, captions, alerts) as
Markdown. Rendered raw, ``![x](http://host/pixel.png)`` as a search name makes every viewer's
browser fetch that URL. These helpers make such text inert (no Streamlit import: pages and view
functions both use them)."""

from __future__ import annotations

import re
import string
from typing import Any

_ESCAPED = frozenset(string.punctuation)  # CommonMark: any ASCII punctuation may be backslash-escaped


def md_text(value: Any) -> str:
    """``value`` as Markdown that renders as exactly its text: every ASCII punctuation mark is
    backslash-escaped, so no image, link, emphasis, HTML, heading, list, table, math (``$``) or
    Streamlit directive (``:red[...]``) survives."""
    return "".join("\\" + c if c in _ESCAPED else c for c in str(value))


def md_code(value: Any) -> str:
    """``value`` as an inline code span (monospace, nothing inside interpreted), fenced with more
    backticks than any run of backticks it holds; newlines become spaces."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    if not text:
        return ""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"
