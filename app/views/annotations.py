"""Tags and a note on a search, so that runs of one configuration (seeds, repeats) can be told
apart. Reading them is open to every viewer; changing them is a write action (see
:mod:`app.views.access`): the page checks :func:`app.ui.writable` when it draws the form and
again when it saves.
"""

from __future__ import annotations

import re

from db import repository as repo
from db.session import session_scope
from knas_core.errors import InputError

MAX_TAGS = 20
MAX_TAG_LENGTH = 40
MAX_NOTE_LENGTH = 4000
#: Letters, digits and ``. _ - : = +`` (``seed=3``, ``v1.2``, ``knas+synflow``); no spaces or commas.
TAG_PATTERN = re.compile(r"[\w.:=+-]+")


class AnnotationError(InputError, ValueError):
    """Tags or a note that cannot be stored; ``str()`` says which and why."""


def parse_tags(text: str) -> list[str]:
    """Comma-separated tags -> a list: blanks dropped, surrounding spaces trimmed, repeats kept
    once (first place). Raises :class:`AnnotationError` for a tag that is too long, holds other
    characters than :data:`TAG_PATTERN`'s, or for more than :data:`MAX_TAGS` tags."""
    tags: list[str] = []
    for raw in text.split(","):
        tag = raw.strip()
        if not tag or tag in tags:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise AnnotationError(f"tag {tag[:MAX_TAG_LENGTH]!r}... is longer than {MAX_TAG_LENGTH} "
                                  "characters")
        if not TAG_PATTERN.fullmatch(tag):
            raise AnnotationError(f"tag {tag!r}: use letters, digits and . _ - : = + only "
                                  "(tags are separated by commas)")
        tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise AnnotationError(f"{len(tags)} tags: at most {MAX_TAGS}")
    return tags


def check_note(note: str) -> str:
    """The note as stored (surrounding blank space trimmed); too long raises :class:`AnnotationError`."""
    note = note.strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise AnnotationError(f"the note has {len(note)} characters: at most {MAX_NOTE_LENGTH}")
    return note


def save(search_id: int, tags_text: str, note: str) -> tuple[list[str], str]:
    """Check and store the tags (comma-separated) and note of a search; returns what was stored.
    Raises :class:`AnnotationError` for bad input and :class:`KeyError` for an unknown search."""
    tags, clean = parse_tags(tags_text), check_note(note)
    with session_scope() as session:
        if not repo.annotate_search(session, search_id, tags, clean):
            raise KeyError(f"no search with id {search_id}")
    return tags, clean
