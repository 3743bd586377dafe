"""Few-shot calibration: a small ranking model fitted on the proxies of a few labelled
architectures, used as a proxy like any other.

A lab often knows the accuracy of a few dozen architectures. :func:`fit_calibration` fits a
Gaussian process (:class:`~knas_core.gaussian_process.GaussianProcess`; Rasmussen & Williams,
*Gaussian Processes for Machine Learning*, 2006: a Matern 3/2 kernel with one length scale per
column group, hyperparameters by maximum marginal likelihood on the k labels) from

* the member proxies' values of each architecture (``log10(value + offset)`` of those whose
  labelled values are never negative and whose positive ones span more than two orders of
  magnitude, e.g. synflow, which is 0 for a cell cut off from its output), one group, and
* what the NAS-Bench-201 cell computes (:func:`cell_structure`): the operations on the edges
  that reach the output, statistics of the live input->output paths (how many, the most
  convolutions in series on one, whether the output is cut off, whether a path holds no
  convolution or is an identity, whether every path pools), one group, and the cell's
  one-hot operation encoding with dead edges read as ``none``, one group,

Fitted on fewer than :data:`PRIOR_BELOW` labels, the process learns the *rank* of each label
among the labelled ones (``rank / k``) and its prior mean is the training-free log-rank
ensemble of the members (:class:`EnsemblePrior`): it learns the labels' departure from it, so a
model of few labels stays near the ensemble (the fitted noise then dominates). From
:data:`PRIOR_BELOW` labels on its prior mean is constant: the labels teach more than the
ensemble's ordering, which the process would otherwise have to unlearn (docs/RESULTS.md,
"Few-shot calibration": with the prior, held-out Kendall tau is lower on each of the three
data sets from 40 labels on, by 0.01-0.02 at 100; at 10 and 20 labels it is 0.02-0.05 higher).
Without the prior it learns the accuracies themselves through their Box-Cox-warped error
(:mod:`knas_core.warping`: ``-(e^lam - 1) / lam`` of ``e = 100 - accuracy``, the power chosen
by the labels' likelihood; a warped Gaussian process), which stretches the small differences
between good networks and squeezes the few collapsed ones near 10 %; its prediction is put in
the ranks' units (:func:`in_rank_units`). Labels that are not accuracies (negative, or 100 or
more) are learnt as ranks.

Beside it, a second process (:class:`PathView`) reads the cell alone another way, by its
structure summary and the path encoding (:func:`summary_and_paths`; White et al., AAAI 2021),
and learns the labels themselves, by the same warping (:func:`fit_on_labels`; labels that are not
accuracies winsorised at their 10th percentile, :func:`winsorised`). The model's prediction is
the mean of the two, each put in the ranks' standard units: an average of two regressions that
differ in input, so that their errors differ (the
squared error of an average is the members' mean error less their spread about it: Krogh &
Vedelsby, "Neural network ensembles, cross validation, and active learning", NIPS 1995). From
20 labels on it ranks held-out architectures better than the first process alone, on all three
data sets; at 10 labels, where the second process has nothing but the labels, it is as likely
to lose as to gain (docs/RESULTS.md).
``method="trees"`` fits the earlier model instead: gradient-boosted trees (scikit-learn's
``HistGradientBoostingRegressor``; Friedman, Ann. Statist. 2001) on the members and the one-hot
encoding, boosted from the same prior, the rounds chosen by cross-validation on the k labels
(:func:`choose_rounds`).
Its prediction for an architecture is a pure
function of that architecture's member values and cell (the prior's reference population is
stored with the model), so a
:class:`CalibratedModel` saved under ``NAME`` (:func:`save_calibrated`, in
``$KNAS_STATE_DIR/calibrated``) becomes the derived proxy ``calibrated:NAME``
(:func:`register_calibrated`): :meth:`knas_core.scoring.Scorer.score` computes its members
(sharing their network and passes) and then the model's prediction. The model is trained only on
the labels the user supplies or looks up in the benchmark table, and its provenance (the label
source and metric, ``k``, the proxies and their score set-up) travels with it and is its
description.

The saved file (format :data:`FORMAT`; a file of an earlier format, whose model read other
columns, is refused with the command to fit it again) is a zip: ``calibration.json`` (provenance, features,
the prior and the Gaussian process's settings, read to list and register the proxy without
importing scikit-learn) and the regressor: ``model.npz`` (the Gaussian process's arrays, no
pickle) or ``model.pkl`` (trees or another regressor, a pickle: load only models you made; one
pickled by another scikit-learn version is refused).
"""

from __future__ import annotations

import io
import json
import math
import pickle
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from knas_core.cell_features import (
    STRUCTURE_SUMMARY,
    cell_encoding,
    cell_structure,
    encoding_names,
    path_encoding,
    path_names,
    structure_names,
    summary_and_path_names,
    summary_and_paths,
)
from knas_core.errors import InputError
from knas_core.proxies import CALIBRATED_PREFIX, PROXIES, Proxy, get_proxy
from knas_core.registry import UnknownNameError
from knas_core.settings import get_settings
from knas_core.spaces.base import SearchSpace

if TYPE_CHECKING:
    from knas_core.groundtruth import GroundTruth

#: The format of the saved file (``calibration.json``'s ``format``): 5 since the main process
#: may learn the warped labels (``rank_units``); 4 (read too) since the model may hold a second
#: process (``path_view``); 3 (read too: it has none) since the cell's structure summary has 14
#: columns (2: 10, 1: gradient-boosted trees on the one-hot encoding).
FORMAT = 5
#: Formats this version reads.
READABLE_FORMATS = (3, 4, 5)
#: What an earlier format's model was, for the message that refuses it.
EARLIER_FORMATS = {1: "gradient-boosted trees on the one-hot cell encoding",
                   2: "a Gaussian process on a 10-column structure summary"}
#: The fewest labels a model is fitted on.
MIN_LABELS = 5
#: ``prior=None`` (the default) starts the Gaussian process from the ensemble prior below this
#: many labels and from a constant at or above it (the trees always start from the prior).
PRIOR_BELOW = 40
#: A proxy whose labelled values are all positive and whose max/min exceeds this is log10-scaled.
LOG_SPAN = 100.0
#: Suffix of a saved model in the state folder.
SUFFIX = ".calib.zip"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


#: ``values[proxy][i]``: the value of member ``proxy`` on architecture ``i``.
MemberValues = Mapping[str, Sequence[float] | np.ndarray]
#: Labels or any other per-architecture numbers.
Numbers = Sequence[float] | np.ndarray


class CalibrationError(InputError, ValueError):
    """A calibration that cannot be fitted, saved or loaded as asked; the message says why."""


# --- features -----------------------------------------------------------------------------------


#: How a model reads the cell: the one-hot encoding (:func:`cell_encoding`), its structure
#: (:func:`cell_structure`), the one-hot and the path encoding (:func:`path_encoding`), or the
#: structure's summary and the path encoding (:func:`summary_and_paths`).
CELL_FEATURES = ("onehot", "structure", "paths", "summary_paths")


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns the model reads: the member ``proxies`` (those of ``logged``, pairs
    ``(proxy, offset)``, as ``log10(value + offset)``) and, when ``encoding``, the cell, read as
    ``cell`` says (:data:`CELL_FEATURES`)."""

    proxies: tuple[str, ...]
    logged: tuple[tuple[str, float], ...] = ()
    encoding: bool = True
    cell: str = "structure"

    @classmethod
    def choose(cls, proxies: Sequence[str], values: MemberValues,
               encoding: bool = True, cell: str = "structure") -> FeatureSpec:
        """The spec for ``proxies`` whose labelled values are ``values[proxy]``: log-scaled where
        they are never negative and the positive ones span more than :data:`LOG_SPAN`, with an
        offset of half the smallest positive value (so that 0 is read too)."""
        if cell not in CELL_FEATURES:
            raise CalibrationError(f"unknown cell features {cell!r}; use one of {', '.join(CELL_FEATURES)}")
        logged = []
        for p in proxies:
            v = np.asarray(values[p], dtype=np.float64)
            positive = v[v > 0]
            if v.size and v.min() >= 0 and positive.size and positive.max() / positive.min() > LOG_SPAN:
                logged.append((p, float(positive.min()) / 2))
        return cls(tuple(proxies), tuple(logged), encoding, cell)

    @property
    def offsets(self) -> dict[str, float]:
        """The log-scaled members and their offsets."""
        return dict(self.logged)

    def cell_names(self) -> list[str]:
        if not self.encoding:
            return []
        if self.cell == "structure":
            return structure_names()
        if self.cell == "summary_paths":
            return summary_and_path_names()
        return encoding_names() + (path_names() if self.cell == "paths" else [])

    def names(self) -> list[str]:
        offsets = self.offsets
        cols = [f"log10({p} + {offsets[p]:.3g})" if p in offsets else p for p in self.proxies]
        return cols + self.cell_names()

    def groups(self) -> tuple[tuple[int, ...], ...]:
        """The matrix's column groups, each with its own length scale in the Gaussian process:
        the members; for the structure, its summary and its live one-hot; for the summary and
        paths, each; or the one-hot (with the path encoding)."""
        from knas_core.gaussian_process import column_groups

        cells = len(self.cell_names())
        parts = [cells]
        if self.cell in ("structure", "summary_paths") and cells:
            parts = [STRUCTURE_SUMMARY, cells - STRUCTURE_SUMMARY]
        return column_groups([len(self.proxies), *parts])

    def matrix(self, archs: Sequence[str], values: MemberValues) -> np.ndarray:
        """One row per architecture: ``values[proxy][i]`` of each member, then the cell's columns.

        Raises :class:`CalibrationError` for a missing member or a value the model cannot read
        (not finite, or negative for a log-scaled member)."""
        offsets = self.offsets
        columns = []
        for p in self.proxies:
            if p not in values:
                raise CalibrationError(f"no values of proxy {p!r}; the model reads {', '.join(self.proxies)}")
            v = np.asarray(values[p], dtype=np.float64)
            if v.shape != (len(archs),):
                raise CalibrationError(f"proxy {p!r}: {v.size} values for {len(archs)} architectures")
            if not np.isfinite(v).all():
                raise CalibrationError(f"proxy {p!r} has a missing or non-finite value")
            if p in offsets:
                if (v < 0).any():
                    raise CalibrationError(f"proxy {p!r} is read on a log scale and got a negative value")
                v = np.log10(v + offsets[p])
            columns.append(v)
        proxy_part = np.column_stack(columns) if columns else np.zeros((len(archs), 0))
        if not self.encoding:
            return proxy_part
        cells = np.array([_read_cell(self.cell, a) for a in archs]).reshape(len(archs), -1)
        return np.hstack([proxy_part, cells])


def _read_cell(cell: str, arch: str) -> np.ndarray:
    if cell == "structure":
        return cell_structure(arch)
    if cell == "paths":
        return np.concatenate([cell_encoding(arch), path_encoding(arch)])
    if cell == "summary_paths":
        return summary_and_paths(arch)
    return cell_encoding(arch)


# --- the training-free prior ---------------------------------------------------------------------

#: Reference quantiles kept per member (and of the prior): a value is placed to 0.1 %.
GRID = 1001


def _grid(values: np.ndarray) -> tuple[float, ...]:
    """The sorted values, or :data:`GRID` evenly spaced quantiles of them."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    if v.size > GRID:
        v = np.quantile(v, np.linspace(0.0, 1.0, GRID))
    return tuple(float(x) for x in v)


def _quantile(reference: Sequence[float], values: np.ndarray) -> np.ndarray:
    """``(#reference <= value + 1) / (n + 1)``: a quantile in ``(0, 1]``, never 0 (logs are taken)."""
    ref = np.asarray(reference, dtype=np.float64)
    return np.asarray((np.searchsorted(ref, values, side="right") + 1) / (ref.size + 1))


@dataclass(frozen=True)
class EnsemblePrior:
    """The training-free log-rank ensemble (AZ-NAS, Lee & Ham, CVPR 2024;
    :func:`~knas_core.search.ensemble.log_rank_aggregate`) as a fixed function of one
    architecture's member values, so that it can start the model: member ``m``'s rank is the
    quantile ``q_m`` of its value among a reference population's values, and the prior is the
    quantile of ``sum_m log q_m`` among the population's own sums. The population is the
    architectures whose member values were known at fit time, labelled or not (their values
    only; no label is read).

    Attributes: ``members``; ``signs`` (+1, or -1 for a lower-is-better proxy);
    ``reference`` (each member's signed values, sorted, at most :data:`GRID` quantiles);
    ``sums`` (the population's log-rank sums, likewise)."""

    members: tuple[str, ...]
    signs: tuple[float, ...]
    reference: tuple[tuple[float, ...], ...]
    sums: tuple[float, ...]

    @classmethod
    def fit(cls, members: Sequence[str], population: MemberValues) -> EnsemblePrior:
        signs = tuple(1.0 if get_proxy(p).higher_is_better else -1.0 for p in members)
        reference = tuple(_grid(s * np.asarray(population[p], dtype=np.float64))
                          for p, s in zip(members, signs))
        prior = cls(tuple(members), signs, reference, ())
        return cls(prior.members, signs, reference, _grid(prior.log_rank(population)))

    def log_rank(self, values: MemberValues) -> np.ndarray:
        """``sum_m log q_m`` of each architecture (``values[proxy][i]``)."""
        total: np.ndarray | None = None
        for p, s, ref in zip(self.members, self.signs, self.reference):
            term = np.log(_quantile(ref, s * np.asarray(values[p], dtype=np.float64)))
            total = term if total is None else total + term
        if total is None:
            raise CalibrationError("an ensemble prior needs at least one proxy")
        return total

    def __call__(self, values: MemberValues) -> np.ndarray:
        """The prior of each architecture: the quantile of its log-rank sum, in ``(0, 1]``."""
        return _quantile(self.sums, self.log_rank(values))

    def to_dict(self) -> dict[str, Any]:
        return {"members": list(self.members), "signs": list(self.signs),
                "reference": [list(r) for r in self.reference], "sums": list(self.sums)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> EnsemblePrior:
        return cls(tuple(raw["members"]), tuple(float(s) for s in raw["signs"]),
                   tuple(tuple(float(x) for x in r) for r in raw["reference"]),
                   tuple(float(x) for x in raw["sums"]))


# --- provenance ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelSource:
    """Where the labels came from: ``kind`` ``file`` (a user's file) or ``benchmark`` (looked up
    in the benchmark table), ``where`` (the file), ``metric`` (its column or the benchmark's
    accuracy column, e.g. ``cifar10_test_acc``)."""

    kind: str
    where: str
    metric: str

    def describe(self) -> str:
        if self.kind == "benchmark":
            return f"the benchmark table look-up of {self.metric} ({self.where})"
        return f"the user's file {self.where} (column {self.metric})"


_CELL_WORDS = {"structure": "NB201 cell structure (live operations and paths)",
               "onehot": "NB201 cell encoding", "paths": "NB201 cell encoding and path encoding"}


_MODEL_WORDS = {"gp": "Gaussian process on ", "trees": "gradient-boosted trees on "}


@dataclass(frozen=True)
class Provenance:
    """What a calibrated model was trained on: its labels, their number ``k``, the member
    ``proxies``, the ``scores`` set-up their values came from (a file, dataset, batch size,
    seed, ...), when, and with which scikit-learn."""

    labels: LabelSource
    k: int
    proxies: tuple[str, ...]
    scores: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    sklearn: str = ""
    #: How the model was fitted: ``method`` (``gp`` or ``trees``), ``encoding``, ``prior``
    #: (booleans), ``cell`` (how the cell is read); for a Gaussian process its fitted
    #: ``length_scales``, ``signal``, ``noise`` and ``log_marginal_likelihood``, and those of the
    #: ``path_view`` process (when there is one); for a process that learnt the labels rather
    #: than their ranks, its ``target`` and, when warped, ``box_cox_lambda`` and
    #: ``error_ceiling`` (:mod:`knas_core.warping`); for trees the ``rounds`` and the
    #: cross-validated ``cv_kendall`` that chose them.
    fit: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line, e.g. ``trained on 100 labels from the user's file acc.csv (column accuracy);
        Gaussian process on synflow, params + NB201 cell structure (live operations and paths),
        from the proxies' log-rank ensemble; member scores: file=scores.csv.gz``."""
        setup = ", ".join(f"{k}={v}" for k, v in self.scores.items()) or "not recorded"
        reads = [", ".join(self.proxies)] if self.proxies else []
        if self.fit.get("encoding", True):
            reads.append(_CELL_WORDS.get(str(self.fit.get("cell")), "NB201 cell encoding"))
        gp = self.fit.get("method") == "gp"
        model = _MODEL_WORDS.get(str(self.fit.get("method")), "")
        start = ""
        if self.fit.get("prior"):
            start = f", {'' if gp else 'boosted '}from the proxies' log-rank ensemble"
        if "box_cox_lambda" in self.fit:
            start += f", on the accuracies' Box-Cox-warped error (power {self.fit['box_cox_lambda']:g})"
        if self.fit.get("path_view"):
            start += ("; averaged with a Gaussian process on the cell's structure summary and path "
                      "encoding alone")
        return (f"trained on {self.k} labels from {self.labels.describe()}; {model or 'features: '}"
                f"{' + '.join(reads) or 'none'}{start}; member scores: {setup}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["proxies"] = list(self.proxies)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Provenance:
        return cls(LabelSource(**raw["labels"]), int(raw["k"]), tuple(raw["proxies"]),
                   dict(raw.get("scores") or {}), str(raw.get("created", "")), str(raw.get("sklearn", "")),
                   dict(raw.get("fit") or {}))


# --- inputs: a labels file and a long-format scores file ---------------------------------------

#: The columns of a long-format scores file (the score atlas export): one row per architecture
#: and proxy; any other column is part of the score set-up.
LONG_COLUMNS = ("index", "proxy", "value")


def read_labels(path: str | Path, space: SearchSpace, column: str = "accuracy") -> dict[int, float]:
    """Labels of a CSV with an ``arch`` or ``index`` column and ``column`` (accuracies), as
    ``{official index: label}``. Raises :class:`CalibrationError` naming the file, the row
    (counting the header as row 1) and the problem: a missing column, an architecture that is
    not a NAS-Bench-201 cell, an index out of range, a label that is not a number, a repeat."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError) as exc:
        raise CalibrationError(f"{path}: not a readable CSV ({exc})") from None
    key = "arch" if "arch" in frame.columns else "index" if "index" in frame.columns else None
    if key is None or column not in frame.columns:
        raise CalibrationError(f"{path}: expected columns 'arch' (or 'index') and {column!r}; "
                               f"found {', '.join(map(str, frame.columns)) or 'none'}")
    labels: dict[int, float] = {}
    for row, (ref, text) in enumerate(zip(frame[key], frame[column]), start=2):
        where = f"{path}, row {row}"
        try:
            index = space.index_of(space.validate(ref)) if key == "arch" else int(ref)
            space.arch_at(index)  # in range
        except (InputError, ValueError, KeyError) as exc:
            raise CalibrationError(f"{where}: unknown architecture {ref!r} ({exc})") from None
        try:
            value = float(text)
        except ValueError:
            raise CalibrationError(f"{where}: {column} {text!r} is not a number") from None
        if not math.isfinite(value):
            raise CalibrationError(f"{where}: {column} {text!r} is not a finite number")
        if index in labels:
            raise CalibrationError(f"{where}: architecture {index} is labelled twice")
        labels[index] = value
    return labels


@dataclass(frozen=True)
class ScoreTable:
    """Member values by official index (``values``: a frame, one column per proxy; ``NaN`` where
    the file has no finite value) and the file's set-up (columns with one value throughout)."""

    values: Any  # pandas.DataFrame
    setup: dict[str, Any]

    def proxies(self) -> list[str]:
        return [str(c) for c in self.values.columns]


def long_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``knas score`` records (JSON lines) as long-format rows ``index, proxy, value, data``
    (``value`` empty where the proxy failed)."""
    rows = []
    for record in records:
        for proxy, value in record["scores"].items():
            rows.append({"index": record["index"], "proxy": proxy, "value": value,
                         "data": record.get("data")})
    return rows


def read_long_scores(path: str | Path) -> ScoreTable:
    """A long-format scores CSV (plain or gzip): columns ``index, proxy, value`` and any set-up
    columns; or ``knas score``'s JSON lines (``.jsonl``), read as :func:`long_rows`. Raises
    :class:`CalibrationError` for missing columns, an index that is not a whole number, or one
    architecture with two values of a proxy."""
    import pandas as pd

    try:
        if str(path).endswith(".jsonl"):
            from knas_core.evaluation import read_records

            frame = pd.DataFrame(long_rows(read_records(path)), columns=[*LONG_COLUMNS, "data"])
        else:
            frame = pd.read_csv(path)
    except FileNotFoundError:
        raise
    except (ValueError, OSError) as exc:
        raise CalibrationError(f"{path}: not a readable scores file ({exc})") from None
    missing = [c for c in LONG_COLUMNS if c not in frame.columns]
    if missing:
        raise CalibrationError(f"{path}: missing column(s) {', '.join(missing)}; a scores file has one row "
                               f"per architecture and proxy with columns {', '.join(LONG_COLUMNS)}")
    index = pd.to_numeric(frame["index"], errors="coerce")
    bad = index.isna() | (index % 1 != 0)
    if bad.any():
        raise CalibrationError(f"{path}, row {int(bad.to_numpy().argmax()) + 2}: index "
                               f"{frame['index'][bad].iloc[0]!r} is not a whole number")
    frame = frame.assign(index=index.astype(int), value=pd.to_numeric(frame["value"], errors="coerce"))
    twice = frame.duplicated(["index", "proxy"])
    if twice.any():
        first = frame[twice].iloc[0]
        raise CalibrationError(f"{path}: architecture {first['index']} has two values of {first['proxy']!r}")
    wide = frame.pivot(index="index", columns="proxy", values="value").sort_index()
    wide.columns = [str(c) for c in wide.columns]
    setup = {str(c): _plain(frame[c].iloc[0]) for c in frame.columns
             if c not in (*LONG_COLUMNS, "arch", "error", "seconds") and frame[c].nunique(dropna=False) == 1}
    return ScoreTable(wide.astype(float), setup)


def _plain(value: Any) -> Any:
    """A JSON-ready scalar (numpy's become Python's)."""
    return value.item() if hasattr(value, "item") else value


# --- the model ----------------------------------------------------------------------------------


def require_sklearn() -> Any:
    from knas_core.optional import require

    return require("sklearn", "calibration", "few-shot calibration (knas calibrate, calibrated: proxies)")


@contextmanager
def one_thread() -> Iterator[None]:
    """Fit and predict on one OpenMP thread: a few hundred rows gain nothing from more, and on a
    shared machine the idle threads' spinning made one fit 30x slower (75 s against 2.6 s for
    150 rows under load 14)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


#: Boosting rounds among which :func:`choose_rounds` picks (0: the prior alone).
ROUNDS = (0, 10, 25, 50, 100, 200, 400)
#: Folds of that cross-validation.
FOLDS = 5


def default_regressor(k: int, seed: int = 0, rounds: int = 100) -> Any:
    """The gradient-boosting regressor for ``k`` labels: ``rounds`` small trees (8 leaves),
    shrinkage 0.05, L2 on the leaf values, and leaves of at least ``clip(k // 10, 2, 10)``
    samples (the library's default of 20 would not split at all below 40 labels); no early
    stopping (it would hold out some of the few labels; :func:`choose_rounds` picks ``rounds``)."""
    require_sklearn()
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=rounds, learning_rate=0.05, max_leaf_nodes=8,
                                         min_samples_leaf=int(np.clip(k // 10, 2, 10)),
                                         l2_regularization=1.0, early_stopping=False, random_state=seed)


def choose_rounds(x: np.ndarray, begin: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[int, float]:
    """The boosting rounds (of :data:`ROUNDS`) whose out-of-fold predictions rank ``labels`` best,
    and that Kendall tau: :data:`FOLDS`-fold cross-validation on the ``k`` labelled rows ``x``,
    each fold's trees fitted to its own training labels' ranks minus the prior ``begin``, and
    the out-of-fold predictions (``begin`` plus the staged corrections) pooled before the tau is
    taken. Ties go to fewer rounds; a tau that is undefined (constant predictions) never wins."""
    from scipy.stats import kendalltau

    k = len(labels)
    fold = np.random.default_rng(seed).permutation(k) % FOLDS
    predicted = np.tile(begin, (len(ROUNDS), 1))
    for f in range(FOLDS):
        test, train = fold == f, fold != f
        if not test.any() or train.sum() < 2:
            continue
        reg = default_regressor(int(train.sum()), seed, max(ROUNDS))
        with one_thread():
            reg.fit(x[train], rank_targets(labels[train]) - begin[train])
            stages = list(reg.staged_predict(x[test]))
        for row, n in enumerate(ROUNDS):
            if n:
                predicted[row, test] += stages[n - 1]
    best, best_tau = ROUNDS[0], -np.inf
    for row, n in enumerate(ROUNDS):
        t = float(kendalltau(predicted[row], labels).statistic)
        if np.isfinite(t) and t > best_tau:
            best, best_tau = n, t
    return best, float(best_tau)


def rank_targets(labels: Numbers) -> np.ndarray:
    """``rank / k`` of each label (average ranks for ties): the regression target."""
    from scipy.stats import rankdata

    y = np.asarray(labels, dtype=np.float64)
    return np.asarray(rankdata(y, method="average") / len(y))


#: The path view learns the labels themselves, raised to this percentile of the labelled ones
#: where lower (:func:`winsorised`).
WINSOR_PERCENTILE = 10.0


def winsorised(labels: Numbers, percentile: float = WINSOR_PERCENTILE) -> np.ndarray:
    """``labels`` with every value below their ``percentile``-th percentile raised to it
    (one-sided winsorising: Tukey, "The future of data analysis", Ann. Math. Statist. 1962), so
    that the few collapsed networks near 10 % do not set the scale of the regression."""
    y = np.asarray(labels, dtype=np.float64)
    return np.asarray(np.maximum(y, np.percentile(y, percentile)))


def in_rank_units(regressor: Any, predicted: np.ndarray, rank_mean: float, rank_scale: float) -> np.ndarray:
    """A Gaussian process's ``predicted`` values (in its targets' units) put in the units of the
    labels' ranks by matching standard scores: ``rank_mean + rank_scale (v - mean) / sd``, where
    ``mean`` and ``sd`` are the process's own targets' and ``rank_mean`` and ``rank_scale`` those
    of the labels' ranks (:func:`rank_targets`)."""
    v = np.asarray(predicted, dtype=np.float64)
    return np.asarray(rank_mean + rank_scale * (v - regressor.y_mean) / regressor.y_scale)


def rank_moments(labels: Numbers) -> tuple[float, float]:
    """Mean and standard deviation of the labels' ranks (:func:`rank_targets`)."""
    ranks = rank_targets(labels)
    return float(ranks.mean()), float(ranks.std()) or 1.0


def fit_on_labels(groups: tuple[tuple[int, ...], ...], x: np.ndarray, labels: Numbers, seed: int,
                  warp: bool) -> tuple[Any, dict[str, Any]]:
    """A Gaussian process on rows ``x`` that learns the labels themselves, and how: through the
    Box-Cox-warped error with the power of highest likelihood (:func:`~knas_core.warping.fit_warped`)
    when ``warp`` and the labels are accuracies (:func:`~knas_core.warping.error_ceiling`), else
    the labels winsorised at :data:`WINSOR_PERCENTILE` (:func:`winsorised`)."""
    from knas_core.gaussian_process import GaussianProcess
    from knas_core.warping import fit_warped

    def make(restarts: int = 3) -> GaussianProcess:
        return GaussianProcess(groups, restarts=restarts, seed=seed)

    warped = fit_warped(make, x, labels) if warp else None
    if warped is not None:
        return warped.regressor, {"target": "box-cox warped error", **warped.describe()}
    how = {"target": f"labels winsorised at {WINSOR_PERCENTILE:g}th percentile"}
    return make().fit(x, winsorised(labels)), how


@dataclass(frozen=True)
class PathView:
    """A second Gaussian process on the same labelled architectures that reads the cell another
    way (``features``: :func:`summary_and_paths`; no proxy, no prior) and learns the labels
    themselves (:func:`fit_on_labels`: their Box-Cox-warped error, or for labels that are not
    accuracies the labels winsorised at :data:`WINSOR_PERCENTILE`). Its prediction is put on the
    labels' rank scale by matching standard scores (:func:`in_rank_units` with ``rank_mean``
    and ``rank_scale``). The model predicts the mean of that and the main prediction: two
    regressions that differ in input make different errors, and from 20 labels on their average
    ranks better than the main one alone (docs/RESULTS.md). ``how``: the target and warping."""

    features: FeatureSpec
    regressor: Any  # knas_core.gaussian_process.GaussianProcess
    rank_mean: float
    rank_scale: float
    how: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, archs: Sequence[str], labels: Numbers, seed: int = 0, warp: bool = True) -> PathView:
        spec = FeatureSpec((), (), True, "summary_paths")
        gp, how = fit_on_labels(spec.groups(), spec.matrix(archs, {}), labels, seed, warp)
        return cls(spec, gp, *rank_moments(labels), how)

    def predict(self, archs: Sequence[str]) -> np.ndarray:
        """The prediction of each architecture in the units of the labels' ranks."""
        v = self.regressor.predict(self.features.matrix(archs, {}))
        return in_rank_units(self.regressor, v, self.rank_mean, self.rank_scale)


@dataclass
class CalibratedModel:
    """A fitted model: ``predict`` gives, for each architecture, the predicted rank (0..1) of
    its label among the labelled architectures (higher is better): the ensemble ``prior`` (when
    there is one) plus the ``regressor``'s correction (a
    :class:`~knas_core.gaussian_process.GaussianProcess` reading the features, or trees reading
    the features and the prior), averaged with the ``path_view``'s prediction when there is one
    (a model average of two processes that read the cell differently; docs/RESULTS.md). With
    ``rank_units`` ``(rank_mean, rank_scale)``, the Gaussian process learnt the labels (their
    warped error, :func:`fit_on_labels`) rather than their ranks, and its prediction is put in
    the ranks' units (:func:`in_rank_units`)."""

    features: FeatureSpec
    regressor: Any
    provenance: Provenance
    prior: EnsemblePrior | None = None
    path_view: PathView | None = None
    rank_units: tuple[float, float] | None = None

    def _inputs(self, archs: Sequence[str], values: MemberValues) -> tuple[np.ndarray, np.ndarray]:
        """The regressor's rows, and the prior of each architecture (zeros without one)."""
        x = self.features.matrix(archs, values)
        if self.prior is None:
            return x, np.zeros(len(archs))
        start = self.prior(values)
        return np.column_stack([x, start]), start

    def predict(self, archs: Sequence[str], values: MemberValues) -> np.ndarray:
        """Predictions for ``archs``; ``values[proxy][i]`` is architecture ``i``'s member value."""
        if not archs:
            return np.zeros(0)
        x, start = self._inputs(archs, values)
        if self.regressor is None:  # no round helped in cross-validation: the prior alone
            return start
        if is_gaussian_process(self.regressor):
            main = start + self.regressor.predict(x)
            if self.rank_units is not None:
                main = in_rank_units(self.regressor, main, *self.rank_units)
            return main if self.path_view is None else (main + self.path_view.predict(archs)) / 2
        with one_thread():
            return start + np.asarray(self.regressor.predict(x), dtype=np.float64)

    def predict_one(self, arch: str, values: Mapping[str, float]) -> float:
        """The prediction for one architecture from its member values (the proxy's value)."""
        return float(self.predict([arch], {p: [values[p]] for p in self.features.proxies if p in values})[0])

    def describe(self) -> str:
        return self.provenance.describe()


def is_gaussian_process(regressor: Any) -> bool:
    """Whether ``regressor`` is this package's Gaussian process (saved without pickle)."""
    from knas_core.gaussian_process import GaussianProcess

    return isinstance(regressor, GaussianProcess)


#: The models :func:`fit_calibration` fits: a Gaussian process on the cell's structure (the
#: default) or the earlier gradient-boosted trees on its one-hot encoding.
METHODS = ("gp", "trees")


def fit_calibration(archs: Sequence[str], values: MemberValues, labels: Numbers,
                    *, proxies: Sequence[str] | None = None, labels_from: LabelSource | None = None,
                    scores: Mapping[str, Any] | None = None, encoding: bool = True, prior: bool | None = None,
                    population: MemberValues | None = None, seed: int = 0,
                    regressor: Any = None, method: str = "gp", path_view: bool = True,
                    warp: bool = True) -> CalibratedModel:
    """Fit a :class:`CalibratedModel` on ``k = len(archs)`` labelled architectures.

    Args:
        archs: NAS-Bench-201 cell strings.
        values: ``values[proxy][i]``: architecture ``i``'s value of each member proxy.
        labels: their accuracies (any scale where higher is better; only the ranks are used).
        proxies: the members (default: every key of ``values``, in order).
        labels_from / scores: provenance (where the labels and the member values came from).
        encoding: read the cell too (its structure for ``gp``, its one-hot for ``trees``).
        prior: start from the training-free ensemble of the members (:class:`EnsemblePrior`);
            the model then learns the labels' departure from it (the Gaussian process's prior
            mean; the trees' initial score, as LightGBM's ``init_score``), so that a model of few
            labels stays near the ensemble. ``None``: for ``gp``, only when ``k`` is below
            :data:`PRIOR_BELOW`; for ``trees``, always. ``population``: the member values of the
            architectures the prior ranks against (default: the labelled ones).
        seed: the seed of the likelihood's restarts (``gp``), the trees and their folds.
        regressor: an unfitted scikit-learn-style regressor instead of the method's own.
        method: ``gp`` (:class:`~knas_core.gaussian_process.GaussianProcess` with one length
            scale per column group, :meth:`FeatureSpec.groups`, hyperparameters by maximum
            marginal likelihood on the k labels) or ``trees`` (:func:`default_regressor` with the
            rounds :func:`choose_rounds` picks), see :data:`METHODS`.
        path_view: for ``gp`` with ``encoding`` and its own process, also fit a second process
            on the cell alone, read by :func:`summary_and_paths` (no proxy, no prior), to the
            labels, and predict the mean of the two (:class:`PathView`).
        warp: for ``gp``'s own processes, where the labels are accuracies (percent or fraction,
            :func:`~knas_core.warping.error_ceiling`): a process without the prior learns their
            Box-Cox-warped error, the power chosen by likelihood (:mod:`knas_core.warping`),
            instead of their ranks (the main process) or the winsorised labels (the path view).

    Raises :class:`CalibrationError` for fewer than :data:`MIN_LABELS` labels, labels that are
    all equal or not finite, or member values the model cannot read.
    """
    k = len(archs)
    if method not in METHODS:
        raise CalibrationError(f"unknown calibration method {method!r}; use one of {', '.join(METHODS)}")
    if len(labels) != k:
        raise CalibrationError(f"{len(labels)} labels for {k} architectures")
    if k < MIN_LABELS:
        raise CalibrationError(f"need at least {MIN_LABELS} labelled architectures, got {k}")
    y = np.asarray(labels, dtype=np.float64)
    if not np.isfinite(y).all():
        raise CalibrationError("a label is missing or not a finite number")
    if np.ptp(y) == 0:
        raise CalibrationError("every label is the same; the model would learn no ranking")
    members = tuple(proxies if proxies is not None else values)
    if prior is None:
        prior = method == "trees" or k < PRIOR_BELOW
    if not members and not encoding:
        raise CalibrationError("a model needs proxies or the cell encoding to read")
    for p in members:
        if get_proxy(p).derived:
            raise CalibrationError(f"proxy {p!r} is itself derived; use the proxies it is computed from")
    cell = "structure" if method == "gp" else "onehot"
    spec = FeatureSpec.choose(members, {p: values[p] for p in members if p in values}, encoding, cell)
    spec.matrix(archs, values)  # every member readable, before the prior reads them
    start = None
    if prior and members:
        reference = population if population is not None else values
        for p in members:
            if p not in reference or not np.isfinite(np.asarray(reference[p], dtype=np.float64)).all():
                raise CalibrationError(f"the prior's population lacks a finite value of {p!r} somewhere")
        start = EnsemblePrior.fit(members, reference)
    fitted = CalibratedModel(spec, None, Provenance(LabelSource("file", "", ""), k, members), start)
    x, begin = fitted._inputs(archs, values)
    target = rank_targets(y) - begin
    how: dict[str, Any] = {"method": method, "encoding": encoding, "cell": cell, "prior": start is not None}
    version = ""
    if regressor is not None or method == "trees":
        version = str(getattr(require_sklearn(), "__version__", ""))
    if regressor is None and method == "gp":
        from knas_core.gaussian_process import GaussianProcess
        from knas_core.warping import error_ceiling

        if start is None and warp and error_ceiling(y) is not None:
            regressor, warping = fit_on_labels(spec.groups(), x, y, seed, warp)
            fitted.rank_units = rank_moments(y)
            how.update(warping)
        else:
            regressor = GaussianProcess(spec.groups(), seed=seed).fit(x, target)
        how.update(regressor.hyperparameters())
        if path_view and encoding:
            fitted.path_view = PathView.fit(archs, y, seed, warp)
            how["path_view"] = {**fitted.path_view.how, **fitted.path_view.regressor.hyperparameters()}
    else:
        if regressor is None:
            rounds, cv = choose_rounds(x, begin, y, seed)
            how.update(rounds=rounds, cv_kendall=round(cv, 4))
            regressor = default_regressor(k, seed, rounds) if rounds else None
        if regressor is not None:
            with one_thread():
                regressor.fit(x, target)
    fitted.regressor = regressor
    fitted.provenance = Provenance(labels_from or LabelSource("file", "unrecorded", "accuracy"), k, members,
                                   dict(scores or {}), datetime.now(UTC).isoformat(timespec="seconds"),
                                   version, how)
    return fitted


# --- a whole calibration: labels and a table of member values -> a model and a ranking ------------


def lookup_labels(truth: GroundTruth, indices: Iterable[int], dataset: str, metric: str = "test"
                  ) -> tuple[dict[int, float], LabelSource]:
    """The benchmark's accuracies of ``indices`` (``metric`` of ``dataset``) and their source."""
    from knas_core.groundtruth import accuracy_column

    column = accuracy_column(dataset, metric)
    acc = truth.frame[column]
    return {int(i): float(acc.loc[i]) for i in indices}, LabelSource("benchmark", truth.source, column)


def draw_indices(indices: Iterable[int], n: int, seed: int) -> list[int]:
    """``n`` of ``indices`` drawn by ``seed`` (the first ``n`` of one seeded permutation, so a
    larger draw holds a smaller one)."""
    pool = np.asarray(list(indices))
    if not 0 < n < pool.size:
        raise CalibrationError(f"can label 1 to {pool.size - 1} of the {pool.size} scored architectures "
                               f"(the rest are ranked), not {n}")
    return [int(i) for i in np.random.default_rng(seed).permutation(pool)[:n]]


def select_proxies(table: ScoreTable, proxies: Sequence[str] | None, where: str) -> Any:
    """The columns of ``proxies`` (default: all) of ``table``; a proxy it lacks is an error."""
    names = list(proxies) if proxies else table.proxies()
    absent = [p for p in names if p not in table.proxies()]
    if absent:
        raise CalibrationError(f"{where} has no scores of {', '.join(absent)}; "
                               f"it has {', '.join(table.proxies())}")
    return table.values[names]


@dataclass
class CalibrationRun:
    """A fitted model, the ranking of the unlabelled architectures (``rank, index, arch,
    predicted``, best first) and how many labelled ones lacked a member value."""

    model: CalibratedModel
    ranking: Any  # pandas.DataFrame
    dropped: int


def calibrate(values: Any, labels: Mapping[int, float], space: SearchSpace, *, source: LabelSource,
              setup: Mapping[str, Any] | None = None, seed: int = 0,
              where: str = "the scores") -> CalibrationRun:
    """Fit on the labelled architectures of ``values`` (a frame: official index -> one column
    per member proxy, ``NaN`` where missing) and rank the others.

    Labelled architectures without every member value are left out (counted in ``dropped``);
    the prior ranks against every architecture with all values, labelled or not. Raises
    :class:`CalibrationError` for an index outside the space, a labelled architecture that is
    not in ``values`` or too few usable labels."""
    import pandas as pd

    outside = [int(i) for i in values.index if not 0 <= int(i) < space.size]
    if outside:
        raise CalibrationError(f"{where}: index {outside[0]} is not in the space (0..{space.size - 1})")
    unscored = [i for i in labels if i not in values.index]
    if unscored:
        raise CalibrationError(f"{len(unscored)} labelled architecture(s) have no scores in {where} (first: "
                               f"index {unscored[0]}, {space.arch_at(unscored[0])}); score them or drop them")
    complete = values.dropna()
    usable = [i for i in labels if i in complete.index]
    if len(usable) < MIN_LABELS < len(labels):
        raise CalibrationError(f"only {len(usable)} of the {len(labels)} labelled architectures have a value "
                               f"of every member proxy; a model needs at least {MIN_LABELS}")
    rows = complete.loc[usable]
    model = fit_calibration([space.arch_at(i) for i in usable], {p: rows[p].to_numpy() for p in rows.columns},
                            [labels[i] for i in usable], proxies=[str(c) for c in values.columns],
                            labels_from=source, scores=setup, seed=seed,
                            population={p: complete[p].to_numpy() for p in complete.columns})
    rest = complete.drop(index=[i for i in labels if i in complete.index])
    archs = [space.arch_at(int(i)) for i in rest.index]
    predicted = model.predict(archs, {p: rest[p].to_numpy() for p in rest.columns})
    ranking = pd.DataFrame({"index": [int(i) for i in rest.index], "arch": archs, "predicted": predicted})
    ranking = ranking.sort_values("predicted", ascending=False, kind="stable").reset_index(drop=True)
    ranking.insert(0, "rank", range(1, len(ranking) + 1))
    return CalibrationRun(model, ranking, len(labels) - len(usable))


# --- files --------------------------------------------------------------------------------------


def _header(model: CalibratedModel) -> dict[str, Any]:
    gp = is_gaussian_process(model.regressor)
    return {"format": FORMAT, "provenance": model.provenance.to_dict(),
            "features": {"proxies": list(model.features.proxies), "logged": dict(model.features.logged),
                         "encoding": model.features.encoding, "cell": model.features.cell},
            "prior": model.prior.to_dict() if model.prior is not None else None,
            "regressor": ({"kind": "gaussian_process", **model.regressor.settings(),
                           "rank_units": list(model.rank_units) if model.rank_units else None} if gp
                          else {"kind": "pickle"}),
            "path_view": ({"cell": model.path_view.features.cell, "rank_mean": model.path_view.rank_mean,
                           "rank_scale": model.path_view.rank_scale, **model.path_view.regressor.settings()}
                          if model.path_view is not None else None),
            "target": "rank of the label among the k labelled architectures, divided by k; the "
                      "prediction is the prior (if any) plus the regressor's output (put in the "
                      "ranks' units if rank_units: it learnt the warped labels), averaged with "
                      "the path view's output (if any)"}


def model_bytes(model: CalibratedModel) -> bytes:
    """The saved file's bytes: a zip of ``calibration.json`` and the regressor: ``model.npz``
    (a Gaussian process's arrays) or ``model.pkl`` (any other regressor, pickled)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("calibration.json", json.dumps(_header(model), indent=2))
        if is_gaussian_process(model.regressor):
            z.writestr("model.npz", _arrays(model.regressor.state()))
            if model.path_view is not None:
                z.writestr("path_view.npz", _arrays(model.path_view.regressor.state()))
        else:
            z.writestr("model.pkl", pickle.dumps(model.regressor, protocol=pickle.HIGHEST_PROTOCOL))
    return buffer.getvalue()


def _arrays(state: Mapping[str, Any]) -> bytes:
    """A Gaussian process's arrays (:meth:`~knas_core.gaussian_process.GaussianProcess.state`)
    as the bytes of an ``.npz`` file."""
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    return buffer.getvalue()


def save_model(model: CalibratedModel, path: str | Path) -> Path:
    """Write ``model`` (header and regressor) to the zip ``path``; returns it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(model_bytes(model))
    tmp.replace(path)  # a reader never sees half a file
    return path


def read_header(path: str | Path) -> dict[str, Any]:
    """``calibration.json`` of a saved model (no scikit-learn import); raises
    :class:`CalibrationError` for a file that is not one, or one of a format this version does
    not read (one of :data:`EARLIER_FORMATS` is refused with the command to fit it again)."""
    try:
        with zipfile.ZipFile(path) as z:
            header = json.loads(z.read("calibration.json"))
    except FileNotFoundError:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CalibrationError(f"{path} is not a saved calibration ({type(exc).__name__}: {exc})") from None
    found = header.get("format") if isinstance(header, dict) else None
    if found in EARLIER_FORMATS:
        raise CalibrationError(f"{path} was saved by an earlier knas calibrate (format {found}: "
                               f"{EARLIER_FORMATS[found]}); this version reads formats "
                               f"{', '.join(map(str, READABLE_FORMATS))}. "
                               "Fit it again with knas calibrate (same labels and scores)")
    if not isinstance(header, dict) or found not in READABLE_FORMATS:
        raise CalibrationError(f"{path}: unknown calibration format {found!r} (this version reads "
                               f"{', '.join(map(str, READABLE_FORMATS))})")
    return header


def _spec(header: Mapping[str, Any]) -> FeatureSpec:
    f = header["features"]
    logged = tuple((str(p), float(o)) for p, o in dict(f["logged"]).items())
    return FeatureSpec(tuple(f["proxies"]), logged, bool(f["encoding"]), str(f["cell"]))


def load_model(path: str | Path) -> CalibratedModel:
    """The model saved at ``path``. A Gaussian process is read from its arrays (no pickle); a
    pickled regressor made by another scikit-learn version is refused (its predictions are not
    guaranteed), with the command to fit it again."""
    header = read_header(path)
    provenance = Provenance.from_dict(header["provenance"])
    settings = dict(header["regressor"])
    view = header.get("path_view")
    path_view = None
    rank_units: tuple[float, float] | None = None
    with zipfile.ZipFile(path) as z:
        if settings["kind"] == "gaussian_process":
            regressor: Any = _restore(z, "model.npz", settings)
            units = settings.get("rank_units")
            if units:
                rank_units = (float(units[0]), float(units[1]))
            if view:
                path_view = PathView(FeatureSpec((), (), True, str(view["cell"])),
                                     _restore(z, "path_view.npz", view), float(view["rank_mean"]),
                                     float(view["rank_scale"]))
        else:
            sklearn = require_sklearn()
            if provenance.sklearn and provenance.sklearn != sklearn.__version__:
                raise CalibrationError(f"{path} was fitted with scikit-learn {provenance.sklearn}, this is "
                                       f"{sklearn.__version__}; fit it again with knas calibrate")
            regressor = pickle.loads(z.read("model.pkl"))  # the user's own saved model (module docstring)
    prior = EnsemblePrior.from_dict(header["prior"]) if header.get("prior") else None
    return CalibratedModel(_spec(header), regressor, provenance, prior, path_view, rank_units)


def _restore(z: zipfile.ZipFile, name: str, settings: Mapping[str, Any]) -> Any:
    """The :class:`~knas_core.gaussian_process.GaussianProcess` saved as ``name`` in ``z``."""
    from knas_core.gaussian_process import GaussianProcess

    with np.load(io.BytesIO(z.read(name)), allow_pickle=False) as arrays:
        return GaussianProcess.restore(settings, dict(arrays))


def calibrated_dir() -> Path:
    """Where named models live: ``$KNAS_STATE_DIR/calibrated``."""
    return get_settings().state_dir / "calibrated"


def check_name(name: str) -> str:
    """``name`` without the ``calibrated:`` prefix, if it is a valid model name."""
    bare = name.removeprefix(CALIBRATED_PREFIX)
    if not _NAME.match(bare):
        raise CalibrationError(f"calibration name {name!r}: use 1-64 letters, digits, '_', '.', '-' "
                               "(starting with a letter or digit)")
    return bare


def model_path(name: str) -> Path:
    return calibrated_dir() / f"{check_name(name)}{SUFFIX}"


def saved_calibrated_names() -> list[str]:
    """``calibrated:NAME`` of every model saved in the state folder (sorted; reads no file)."""
    folder = calibrated_dir()
    if not folder.is_dir():
        return []
    return sorted(CALIBRATED_PREFIX + p.name[:-len(SUFFIX)] for p in folder.glob(f"*{SUFFIX}")
                  if _NAME.match(p.name[:-len(SUFFIX)]))


def save_calibrated(model: CalibratedModel, name: str, *, replace: bool = False) -> Path:
    """Save ``model`` as ``calibrated:NAME`` in the state folder. An existing name is refused
    unless ``replace`` (scores stored under the name by the old model would then be stale)."""
    path = model_path(name)
    if path.exists() and not replace:
        raise CalibrationError(f"a calibration named {check_name(name)!r} exists ({path}); choose another "
                               "name or replace it (scores stored under the old model's name stay stored)")
    save_model(model, path)
    proxy_name = CALIBRATED_PREFIX + check_name(name)
    if proxy_name in PROXIES:  # this process registered the old model: the new one replaces it
        PROXIES.remove(proxy_name)
    return path


# --- the proxy ----------------------------------------------------------------------------------


def calibrated_proxy(proxy_name: str, header: Mapping[str, Any], path: Path) -> Proxy:
    """The derived proxy of a saved model: members from the header, the regressor loaded on the
    first value asked for."""
    spec = _spec(header)
    provenance = Provenance.from_dict(header["provenance"])
    loaded: list[CalibratedModel] = []

    def combine(arch: str, values: Mapping[str, float]) -> float:
        if not loaded:
            loaded.append(load_model(path))
        value = loaded[0].predict_one(arch, values)
        if not math.isfinite(value):
            raise FloatingPointError(f"the model predicted {value}")
        return value

    def fn(model: Any, batch: Any) -> float:
        raise TypeError(f"{proxy_name} is computed from its members' values by Scorer.score, "
                        "not from a network alone")

    fn.__doc__ = f"Few-shot calibrated model: {provenance.describe()}"
    reference = f"knas calibrate: {provenance.describe()}"
    needs = any(get_proxy(p).needs_labels for p in spec.proxies)
    return Proxy(proxy_name, fn, higher_is_better=True, needs_labels=needs, batch_size=None,
                 reference=reference, shares_network=False, members=spec.proxies, combine=combine)


def register_calibrated(name: str) -> Proxy:
    """Register the saved model ``calibrated:NAME`` (or return it if registered); an unknown name
    raises :class:`~knas_core.registry.UnknownNameError` listing the saved ones."""
    bare = check_name(name)
    proxy_name = CALIBRATED_PREFIX + bare
    if proxy_name in PROXIES:
        return PROXIES.get(proxy_name)
    path = model_path(bare)
    if not path.is_file():
        saved = ", ".join(saved_calibrated_names()) or "none"
        raise UnknownNameError(f"unknown proxy {proxy_name!r}: no calibration {bare!r} in {calibrated_dir()} "
                               f"(fit one with knas calibrate; saved: {saved})")
    proxy = calibrated_proxy(proxy_name, read_header(path), path)
    PROXIES.add(proxy_name, proxy)
    return proxy


__all__ = ["CELL_FEATURES", "EARLIER_FORMATS", "FOLDS", "GRID", "LONG_COLUMNS", "METHODS", "MIN_LABELS",
           "PRIOR_BELOW", "READABLE_FORMATS", "ROUNDS", "WINSOR_PERCENTILE", "CalibratedModel",
           "CalibrationError", "CalibrationRun", "EnsemblePrior", "FeatureSpec", "LabelSource", "PathView",
           "Provenance", "ScoreTable", "calibrate", "calibrated_dir", "calibrated_proxy", "cell_encoding",
           "cell_structure", "check_name", "choose_rounds", "default_regressor", "draw_indices",
           "encoding_names", "fit_calibration", "fit_on_labels", "in_rank_units", "load_model",
           "long_rows", "lookup_labels", "model_bytes", "model_path", "path_encoding", "path_names",
           "rank_moments", "read_header", "read_labels", "read_long_scores", "register_calibrated",
           "require_sklearn", "save_calibrated", "save_model", "saved_calibrated_names", "select_proxies",
           "structure_names", "winsorised"]
