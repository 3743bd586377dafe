"""The score atlas in the store: export stored scores as an atlas file (:mod:`knas_core.atlas`)
and import one, with its provenance.

An import stores the file's architectures (and, for a space with a benchmark table, their
accuracies) and its scores with ``INSERT ... ON CONFLICT DO NOTHING``: a score already stored
under the same key stays as it is, so importing a file twice is a no-op, and a stored score
that differs from the file's is reported, never overwritten. A transient failure stored under
the same key (see :attr:`db.models.ProxyScore.transient`) is no cache entry and gives way to the
file's score. Each import that stores anything is recorded in ``atlas_imports`` and its score
rows point at that record (``proxy_scores.atlas_import_id``), so the dashboard labels them
"precomputed atlas". The imported rows carry the same cache key a search computes
(:func:`tasks.search.score_key`), so a search on the same set-up takes its scores from them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from db import repository as repo
from db.models import Architecture, AtlasImport, ProxyScore, utcnow
from knas_core.atlas import Atlas, AtlasFileError, AtlasRow, Setup, describe_setups
from knas_core.errors import InputError

#: How many differing rows an import names (the rest are counted).
SHOWN_CONFLICTS = 5


class AtlasImportError(InputError):
    """An atlas that does not fit the store (its architectures are indexed otherwise)."""


@dataclass
class ImportReport:
    """What an import did: rows in the file, stored, already stored alike, transient failures
    replaced, and rows that differ from a stored score (left as stored; a few named)."""

    file: str
    sha256: str
    rows: int
    inserted: int = 0
    identical: int = 0
    replaced: int = 0
    conflicts: int = 0
    examples: list[str] = field(default_factory=list)
    import_id: int | None = None
    description: str = ""

    def summary(self) -> str:
        """One line: what was stored, from where."""
        if not self.inserted:
            kept = f" ({self.conflicts:,} of them with another result, kept)" if self.conflicts else ""
            return f"nothing new from {self.file}: its {self.rows:,} scores were already stored{kept}"
        already = f"; {self.identical:,} were already stored" if self.identical else ""
        return (f"imported {self.inserted:,} of the {self.rows:,} scores of {self.file} "
                f"({self.description}){already}")

    def conflict_line(self) -> str | None:
        """One line naming the rows that differ from stored scores, or None when none do."""
        if not self.conflicts:
            return None
        more = self.conflicts - len(self.examples)
        return (f"{self.conflicts:,} score(s) of {self.file} differ from the stored ones, which were kept: "
                + "; ".join(self.examples) + (f"; and {more:,} more" if more > 0 else ""))


# --- export ---------------------------------------------------------------------------------------

def export_rows(session: Session, torch_version: str, *, space: str = "nb201",
                datasets: Sequence[str] | None = None,
                proxies: Sequence[str] | None = None) -> tuple[list[AtlasRow], int]:
    """The stored scores of ``space``'s indexed architectures as atlas rows (every set-up;
    only ``datasets`` / ``proxies`` when given), labelled with ``torch_version``, and the number
    of scores left out because they are no cache entries (transient failures) or their
    architecture has no index."""
    where = [Architecture.space == space]
    if datasets:
        where.append(ProxyScore.dataset.in_(list(datasets)))
    if proxies:
        where.append(ProxyScore.proxy.in_(list(proxies)))
    stmt = (select(Architecture.index, ProxyScore.proxy, ProxyScore.value, ProxyScore.error,
                   ProxyScore.dataset, ProxyScore.data, ProxyScore.batch_size, ProxyScore.seed,
                   ProxyScore.device_type, ProxyScore.model, ProxyScore.transient)
            .join(Architecture, Architecture.id == ProxyScore.architecture_id).where(*where))
    rows, left_out = [], 0
    for row in session.execute(stmt):
        index, proxy, value, error, dataset, data, batch, seed, device, model, transient = row
        if index is None or transient:
            left_out += 1
            continue
        rows.append(AtlasRow(space, int(index), proxy, None if value is None else float(value), error,
                             Setup(dataset, data, int(batch), int(seed), device, model, torch_version)))
    return rows, left_out


# --- import ---------------------------------------------------------------------------------------

def _architecture_ids(session: Session, space_name: str, indices: Sequence[int]) -> dict[int, int]:
    """``index -> architecture id`` of ``indices`` in ``space_name``, storing the missing ones;
    raises :class:`AtlasImportError` when the store holds one of them under another index."""
    from knas_core.spaces import open_space

    space = open_space(space_name)
    wanted = {i: space.arch_at(i) for i in indices}
    by_arch = {a: i for i, a in wanted.items()}
    for arch, index in session.execute(select(Architecture.arch, Architecture.index)
                                       .where(Architecture.space == space_name)):
        expected = by_arch.get(arch)
        clash = (expected is not None and index is not None and index != expected) or \
                (index in wanted and wanted[index] != arch)
        if clash:
            try:
                correct: object = space.index_of(arch)
            except (KeyError, ValueError):  # a string the space does not know
                correct = "none"
            raise AtlasImportError(
                f"the store's {space_name} architecture {arch} has index {index}, the space's index "
                f"order says {correct}: the store was filled with another benchmark table; "
                "import into another store")
    ids = repo.ensure_architectures(session, space_name, [(a, i) for i, a in wanted.items()])
    if space.has_benchmark:  # the Correlation page compares scores with these accuracies
        from knas_core.groundtruth import GroundTruth

        repo.load_ground_truth(session, GroundTruth.load(), space_name, sorted(wanted))
    return {i: ids[a] for i, a in wanted.items()}


def _key(row: AtlasRow) -> repo.ScoreKey:
    s = row.setup
    return repo.ScoreKey(row.proxy, s.dataset, s.batch_size, s.seed, s.device_type, s.model, s.data)


def _stored(session: Session, keys: set[repo.ScoreKey]) -> dict[tuple[repo.ScoreKey, int], tuple[Any, ...]]:
    """``(key, architecture id) -> (value, error, transient)`` of every stored score under ``keys``."""
    out = {}
    for key in keys:
        rows = session.execute(select(ProxyScore.architecture_id, ProxyScore.value, ProxyScore.error,
                                      ProxyScore.transient).where(key.as_filter()))
        out.update({(key, a): (v, e, t) for a, v, e, t in rows})
    return out


def import_atlas(session: Session, atlas: Atlas) -> ImportReport:
    """Store ``atlas``'s architectures and scores (see the module's description); returns what
    it did. Records the import (``atlas_imports``) only when it stored a score."""
    report = ImportReport(atlas.path.name, atlas.sha256, len(atlas.rows), description=atlas.describe())
    ids: dict[tuple[str, int], int] = {}
    for space in atlas.spaces:
        indices = sorted({r.index for r in atlas.rows if r.space == space})
        ids.update({(space, i): a for i, a in _architecture_ids(session, space, indices).items()})
    keys = {_key(r) for r in atlas.rows}
    stored = _stored(session, keys)
    fresh: list[tuple[AtlasRow, repo.ScoreKey, int]] = []
    transient: dict[repo.ScoreKey, list[int]] = {}
    for row in atlas.rows:
        key, arch_id = _key(row), ids[(row.space, row.index)]
        found = stored.get((key, arch_id))
        if found is not None and found[2]:  # a transient failure: no cache entry
            transient.setdefault(key, []).append(arch_id)
            found = None
        if found is None:
            fresh.append((row, key, arch_id))
        elif (found[0], found[1]) == (row.value, row.error):
            report.identical += 1
        else:
            report.conflicts += 1
            if len(report.examples) < SHOWN_CONFLICTS:
                was = found[1] if found[0] is None else repr(found[0])
                given = row.error if row.value is None else repr(row.value)
                report.examples.append(f"index {row.index} {row.proxy} ({row.setup.dataset}, seed "
                                       f"{row.setup.seed}, batch {row.setup.batch_size}): stored {was}, "
                                       f"atlas {given}")
    for key, arch_ids in transient.items():
        report.replaced += repo.forget_transient(session, key, arch_ids)
    if not fresh:
        return report
    record = AtlasImport(file=atlas.path.name, path=str(atlas.path), sha256=atlas.sha256,
                         setups=[s.as_dict() for s in atlas.setups], spaces=atlas.spaces,
                         proxies=atlas.proxies, rows=len(atlas.rows), identical=report.identical,
                         conflicts=report.conflicts, imported_at=utcnow())
    session.add(record)
    session.flush()
    now = utcnow()
    repo.insert_ignore(session, ProxyScore, [{
        "architecture_id": arch_id, "proxy": key.proxy, "dataset": key.dataset, "data": key.data,
        "batch_size": key.batch_size, "seed": key.seed, "device_type": key.device_type, "model": key.model,
        "value": row.value, "error": row.error, "seconds": 0.0, "transient": False, "created_at": now,
        "atlas_import_id": record.id} for row, key, arch_id in fresh])
    record.inserted = session.scalar(select(func.count()).select_from(ProxyScore)
                                     .where(ProxyScore.atlas_import_id == record.id)) or 0
    report.inserted, report.import_id = record.inserted, record.id
    return report


def has_scores(session: Session) -> bool:
    """Whether the store holds any score row."""
    return bool(session.scalar(select(exists().where(ProxyScore.id.is_not(None)))))


def import_file(path: str | os.PathLike[str], url: str | None = None) -> ImportReport:
    """Read, check and import the atlas file at ``path`` into the store at ``url``."""
    from db.session import session_scope
    from knas_core.atlas import read_atlas

    atlas = read_atlas(path)
    with session_scope(url) as session:
        return import_atlas(session, atlas)


def import_packaged_if_empty(url: str | None = None) -> ImportReport | None:
    """Import the packaged atlas (:func:`knas_core.atlas.packaged_atlas`) into the store at
    ``url`` when the store holds no score yet and ``KNAS_ATLAS_IMPORT`` is not off; None when
    it did not import (a store with scores, no packaged atlas, or turned off). Runs under the
    migration lock, so two ``knas up`` starting together import once."""
    from db.migrate import _migration_lock
    from db.session import database_url, session_scope
    from knas_core.atlas import packaged_atlas
    from knas_core.settings import get_settings

    if not get_settings().atlas_import:
        return None
    path = packaged_atlas()
    if path is None:
        return None
    url = database_url(url)
    with _migration_lock(url):
        with session_scope(url) as session:
            if has_scores(session):
                return None
        try:
            return import_file(path, url)
        except AtlasFileError as exc:
            raise AtlasFileError(f"the packaged atlas cannot be imported: {exc}") from None


# --- provenance -------------------------------------------------------------------------------------

def provenance_label(record: dict[str, Any], setups: Sequence[Setup] | None = None) -> str:
    """``precomputed atlas: <set-up>, imported <date> from <file>`` for an import record (as
    :func:`db.queries.atlas_imports` gives; ``setups``: the set-ups to name, default all of the
    import's)."""
    from db.models import as_utc

    if setups is None:
        setups = [Setup(**s) for s in record["setups"]]
    when = as_utc(record["imported_at"]).strftime("%Y-%m-%d")
    return f"precomputed atlas: {describe_setups(setups)}, imported {when} from {record['file']}"


#: The fields of a score's key that a :class:`~knas_core.atlas.Setup` holds besides torch.
SETUP_KEY = ("dataset", "data", "batch_size", "seed", "device_type", "model")


def score_label(record: dict[str, Any], key: dict[str, Any]) -> str:
    """The label of scores under ``key`` (a dict of :data:`SETUP_KEY`) stored by the import
    ``record``: its set-up with the torch the import names for it."""
    torch = next((s["torch"] for s in record["setups"] if all(s.get(f) == key[f] for f in SETUP_KEY)),
                 "unrecorded")
    return provenance_label(record, [Setup(**{f: key[f] for f in SETUP_KEY}, torch=torch)])
