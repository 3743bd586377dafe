"""The score atlas file: precomputed proxy scores of a whole search space, one row per
architecture and proxy, with the set-up that determines each score.

A long-format CSV, gzip-compressed, with the columns of :data:`COLUMNS`:

``space, index, proxy, value, error, dataset, data, batch_size, seed, device_type, model, torch``

* ``index``: the architecture's official index in ``space``; the file holds no architecture
  string, the space derives it (:meth:`~knas_core.spaces.base.SearchSpace.arch_at`).
* ``value``: ``repr`` of the float (the shortest text that reads back to the same double), empty
  when the proxy failed; ``error``: the failure's reason, empty when it did not.
* ``dataset, data, batch_size, seed, device_type, model``: the score's cache key besides the
  architecture and the proxy (``db.repository.ScoreKey``): equal keys are interchangeable scores.
* ``torch``: the torch version the scores were computed with (the store does not record it; the
  exporter names it).

Rows are sorted by index, proxy, then set-up, and the gzip header carries no time stamp or file
name, so the same scores always give the same bytes. :func:`read_atlas` checks every row and
raises :class:`AtlasFileError` (one line naming the file, the line and the problem) on the first
bad one. The store side (export from and import into a results store) is :mod:`db.atlas`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from knas_core.errors import DataFileError
from knas_core.paths import DataNotFoundError, find_data

#: The columns of an atlas file, in the order they are written.
COLUMNS = ("space", "index", "proxy", "value", "error", "dataset", "data", "batch_size", "seed",
           "device_type", "model", "torch")
#: Where the packaged atlas lies within a data root (the package data: ``knas_core/bundled``).
PACKAGED_NAME = "atlas/nb201_atlas.csv.gz"
#: The packaged atlas must stay this small (the package data as a whole: 15 MB).
PACKAGED_MAX_BYTES = 2 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


class AtlasFileError(DataFileError):
    """An atlas file that cannot be used; ``str()`` is one line naming the file and the problem."""


@dataclass(frozen=True, order=True)
class Setup:
    """Everything besides the architecture and the proxy that a score depends on, and the torch
    that computed it."""

    dataset: str
    data: str
    batch_size: int
    seed: int
    device_type: str
    model: str
    torch: str

    def describe(self) -> str:
        """One line for people, e.g. ``cifar10, seed 0, batch 64, C=16,N=5, cpu, images
        npz:cifar10_scoring_2k500-train:6468a266f5e4, torch 2.14.1``."""
        parts = [self.dataset, f"seed {self.seed}", f"batch {self.batch_size}"]
        parts += [p for p in (self.model, self.device_type) if p]
        parts.append(f"images {self.data}" if self.data else "images unrecorded")
        return ", ".join(parts + [f"torch {self.torch}"])

    def as_dict(self) -> dict[str, str | int]:
        return {"dataset": self.dataset, "data": self.data, "batch_size": self.batch_size,
                "seed": self.seed, "device_type": self.device_type, "model": self.model,
                "torch": self.torch}


@dataclass(frozen=True)
class AtlasRow:
    """One score: architecture ``index`` of ``space`` under ``proxy`` and ``setup``; ``value``
    when it succeeded, else ``error``."""

    space: str
    index: int
    proxy: str
    value: float | None
    error: str | None
    setup: Setup

    def sort_key(self) -> tuple[str, int, str, Setup]:
        return (self.space, self.index, self.proxy, self.setup)

    def fields(self) -> list[str]:
        s = self.setup
        value = "" if self.value is None else repr(float(self.value))
        return [self.space, str(self.index), self.proxy, value, self.error or "", s.dataset, s.data,
                str(s.batch_size), str(s.seed), s.device_type, s.model, s.torch]


@dataclass(frozen=True)
class Atlas:
    """The rows of an atlas file and where they came from (``sha256`` of the file's bytes)."""

    rows: tuple[AtlasRow, ...]
    path: Path
    sha256: str

    @property
    def setups(self) -> list[Setup]:
        return sorted({r.setup for r in self.rows})

    @property
    def proxies(self) -> list[str]:
        return sorted({r.proxy for r in self.rows})

    @property
    def spaces(self) -> list[str]:
        return sorted({r.space for r in self.rows})

    def describe(self) -> str:
        """``M architectures x proxies; set-up``: what the file holds, in one line (see
        :func:`describe_setups`)."""
        archs = len({(r.space, r.index) for r in self.rows})
        return f"{archs:,} architectures x {', '.join(self.proxies)}; {describe_setups(self.setups)}"


def describe_setups(setups: Sequence[Setup]) -> str:
    """The set-ups in one line; set-ups that differ only in batch size (a proxy with its own
    batch, as eznas) are written once with every batch size."""
    groups: dict[tuple[str, str, int, str, str, str], list[int]] = {}
    for s in setups:
        key = (s.dataset, s.data, s.seed, s.device_type, s.model, s.torch)
        groups.setdefault(key, []).append(s.batch_size)
    out = []
    for (dataset, data, seed, device, model, torch), batches in groups.items():
        text = Setup(dataset, data, 0, seed, device, model, torch).describe()
        out.append(text.replace("batch 0", "batch " + "/".join(str(b) for b in sorted(set(batches)))))
    return "; ".join(out)


def write_atlas(rows: Iterable[AtlasRow], out: str | os.PathLike[str]) -> int:
    """Write ``rows`` (sorted here) as a gzip CSV at ``out``; the same rows give the same
    bytes (no time stamp, no file name in the gzip header). Returns the number of rows."""
    ordered = sorted(rows, key=AtlasRow.sort_key)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(r.fields() for r in ordered)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9,
                                               filename="") as gz:
        gz.write(text.getvalue().encode("utf-8"))
    return len(ordered)


def _text(path: Path, data: bytes) -> str:
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise AtlasFileError(f"atlas {path}: not a readable gzip file ({exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise AtlasFileError(f"atlas {path}: not a CSV text file (nor gzip of one)") from None


def _header(path: Path, header: list[str] | None) -> list[str]:
    if not header:
        raise AtlasFileError(f"atlas {path}: empty file; expected the columns {','.join(COLUMNS)}")
    missing = [c for c in COLUMNS if c not in header]
    unexpected = [c for c in header if c not in COLUMNS]
    if missing or unexpected or len(set(header)) != len(header):
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
                   ([f"unexpected {', '.join(unexpected)}"] if unexpected else []) + \
                   (["a column given twice"] if len(set(header)) != len(header) else [])
        raise AtlasFileError(f"atlas {path}: wrong columns ({'; '.join(problems)}); expected "
                             f"{','.join(COLUMNS)}")
    return header


def _integer(text: str, what: str, where: str, minimum: int = 0) -> int:
    try:
        number = int(text)
    except ValueError:
        raise AtlasFileError(f"{where}: {what} {text!r} is not a whole number") from None
    if number < minimum:
        raise AtlasFileError(f"{where}: {what} {number} is below {minimum}")
    return number


def parse_row(fields: dict[str, str], where: str) -> AtlasRow:
    """One row from its fields (checked for form only: names are checked by :func:`check_names`)."""
    from knas_core.groundtruth import canonical_dataset

    for name in ("space", "proxy", "dataset", "device_type", "torch"):
        if not fields[name].strip():
            raise AtlasFileError(f"{where}: empty {name}")
    try:
        dataset = canonical_dataset(fields["dataset"])
    except ValueError as exc:
        raise AtlasFileError(f"{where}: {exc}") from None
    value: float | None = None
    if fields["value"]:
        try:
            value = float(fields["value"])
        except ValueError:
            raise AtlasFileError(f"{where}: value {fields['value']!r} is not a number") from None
        if not math.isfinite(value):
            raise AtlasFileError(f"{where}: value {fields['value']} is not finite (a failed score has an "
                                 "empty value and its reason in error)")
    error = fields["error"] or None
    if (value is None) == (error is None):
        raise AtlasFileError(f"{where}: give a value or an error, not "
                             f"{'both' if value is not None else 'neither'}")
    setup = Setup(dataset, fields["data"], _integer(fields["batch_size"], "batch_size", where, 1),
                  _integer(fields["seed"], "seed", where), fields["device_type"], fields["model"],
                  fields["torch"])
    return AtlasRow(fields["space"], _integer(fields["index"], "index", where), fields["proxy"],
                    value, error, setup)


def check_names(path: Path, rows: Sequence[AtlasRow], lines: Sequence[int]) -> None:
    """Every row's space and proxy are registered and its index is in the space (so the space
    gives its architecture); raises :class:`AtlasFileError` for the first that is not."""
    from knas_core.proxies import PROXIES
    from knas_core.registry import UnknownNameError
    from knas_core.spaces import SPACES, InvalidArchitectureError, open_space

    spaces = {}
    for row, line in zip(rows, lines):
        where = f"atlas {path} line {line}"
        if row.space not in spaces:
            try:
                SPACES.get(row.space)
            except UnknownNameError as exc:
                raise AtlasFileError(f"{where}: {exc}") from None
            spaces[row.space] = open_space(row.space)
        if row.proxy not in PROXIES:
            raise AtlasFileError(f"{where}: unknown proxy {row.proxy!r} (registered: "
                                 f"{', '.join(PROXIES.names())}; a plugin's proxy needs KNAS_PLUGINS)")
        try:
            spaces[row.space].arch_at(row.index)
        except InvalidArchitectureError as exc:
            raise AtlasFileError(f"{where}: {exc}") from None


def read_atlas(path: str | os.PathLike[str]) -> Atlas:
    """Read and check an atlas file (gzip or plain CSV). Raises :class:`AtlasFileError` (one
    line) for a missing or unreadable file, wrong columns, a malformed row, an unknown space or
    proxy, an index outside the space, or a score given twice."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise AtlasFileError(f"atlas {file}: no such file") from None
    except OSError as exc:
        raise AtlasFileError(f"atlas {file}: cannot read it ({exc.strerror or exc})") from None
    reader = csv.reader(io.StringIO(_text(file, data), newline=""))
    try:
        header = _header(file, next(reader, None))
        rows: list[AtlasRow] = []
        lines: list[int] = []
        seen: dict[tuple[str, int, str, Setup], int] = {}
        for fields in reader:
            line = reader.line_num
            where = f"atlas {file} line {line}"
            if len(fields) != len(header):
                raise AtlasFileError(f"{where}: {len(fields)} fields, the header has {len(header)}")
            row = parse_row(dict(zip(header, fields)), where)
            if row.sort_key() in seen:
                raise AtlasFileError(f"{where}: the same score as line {seen[row.sort_key()]} (index "
                                     f"{row.index}, proxy {row.proxy}, same set-up)")
            seen[row.sort_key()] = line
            rows.append(row)
            lines.append(line)
    except csv.Error as exc:
        raise AtlasFileError(f"atlas {file} line {reader.line_num}: not valid CSV ({exc})") from None
    if not rows:
        raise AtlasFileError(f"atlas {file}: no rows")
    check_names(file, rows, lines)
    return Atlas(tuple(rows), file, hashlib.sha256(data).hexdigest())


def packaged_atlas() -> Path | None:
    """The atlas found through the data look-up order (:mod:`knas_core.paths`; the package data
    holds the one that ships), or None when there is none."""
    try:
        return find_data(PACKAGED_NAME)
    except DataNotFoundError:
        return None
