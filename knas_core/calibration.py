"""Few-shot calibration: a small ranking model fitted on the proxies of a few labelled
architectures, used as a proxy like any other.

A lab often knows the accuracy of a few dozen architectures. :func:`fit_calibration` fits a
gradient-boosted regression tree ensemble (scikit-learn's ``HistGradientBoostingRegressor``;
Friedman, "Greedy function approximation: a gradient boosting machine", Ann. Statist. 2001,
with LightGBM-style histogram splits, Ke et al., NeurIPS 2017) from

* the member proxies' values of each architecture (``log10`` of those whose labelled values are
  all positive and span more than two orders of magnitude, e.g. synflow; trees are invariant
  to monotone transforms, so this only keeps the features readable), and
* the NAS-Bench-201 cell's one-hot operation encoding (6 edges x 5 operations,
  :func:`cell_encoding`; the encoding of White et al., "How powerful are performance
  predictors in neural architecture search?", NeurIPS 2021),

to the *rank* of each label among the labelled ones (``rank / k``, so the model learns an
ordering and is not pulled by the few collapsed networks near 10 %). Its prediction for an
architecture is a pure function of that architecture's member values and cell, so a
:class:`CalibratedModel` saved under ``NAME`` (:func:`save_calibrated`, in
``$KNAS_STATE_DIR/calibrated``) becomes the derived proxy ``calibrated:NAME``
(:func:`register_calibrated`): :meth:`knas_core.scoring.Scorer.score` computes its members
(sharing their network and passes) and then the model's prediction. The model is trained only on
the labels the user supplies or looks up in the benchmark table, and its provenance (the label
source and metric, ``k``, the proxies and their score set-up) travels with it and is its
description.

The saved file is a zip: ``calibration.json`` (provenance and features, read to list and
register the proxy without importing scikit-learn) and ``model.pkl`` (the fitted regressor, a
pickle: load only models you made; a model pickled by another scikit-learn version is refused).
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
from typing import Any

import numpy as np

from knas_core.errors import InputError
from knas_core.proxies import CALIBRATED_PREFIX, PROXIES, Proxy, get_proxy
from knas_core.registry import UnknownNameError
from knas_core.settings import get_settings
from knas_core.spaces.base import SearchSpace
from knas_core.spaces.nb201 import EDGES, OPS, parse_arch

#: The format of the saved file (``calibration.json``'s ``format``).
FORMAT = 1
#: The fewest labels a model is fitted on.
MIN_LABELS = 5
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


def cell_encoding(arch: str) -> np.ndarray:
    """The one-hot operation encoding of a NAS-Bench-201 cell: 30 zeros and ones, edge-major
    (edge ``e`` in :data:`~knas_core.spaces.nb201.EDGES` order, operation ``o`` in ``OPS``
    order at position ``5 e + o``).

    >>> cell_encoding("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")[:10]
    array([0., 0., 0., 1., 0., 1., 0., 0., 0., 0.])
    """
    out = np.zeros(len(EDGES) * len(OPS))
    for edge, op in enumerate(parse_arch(arch)):
        out[edge * len(OPS) + OPS.index(op)] = 1.0
    return out


def encoding_names() -> list[str]:
    """Names of :func:`cell_encoding`'s columns, e.g. ``0->1:none``."""
    return [f"{src}->{dst}:{op}" for src, dst in EDGES for op in OPS]


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns the model reads: the member ``proxies`` (``logged`` ones as ``log10``) and,
    when ``encoding``, the cell's one-hot encoding."""

    proxies: tuple[str, ...]
    logged: tuple[str, ...] = ()
    encoding: bool = True

    @classmethod
    def choose(cls, proxies: Sequence[str], values: MemberValues,
               encoding: bool = True) -> FeatureSpec:
        """The spec for ``proxies`` whose labelled values are ``values[proxy]``: log-scaled where
        they are all positive and span more than :data:`LOG_SPAN`."""
        logged = []
        for p in proxies:
            v = np.asarray(values[p], dtype=np.float64)
            if v.size and v.min() > 0 and v.max() / v.min() > LOG_SPAN:
                logged.append(p)
        return cls(tuple(proxies), tuple(logged), encoding)

    def names(self) -> list[str]:
        cols = [f"log10({p})" if p in self.logged else p for p in self.proxies]
        return cols + (encoding_names() if self.encoding else [])

    def matrix(self, archs: Sequence[str], values: MemberValues) -> np.ndarray:
        """One row per architecture: ``values[proxy][i]`` of each member, then the encoding.

        Raises :class:`CalibrationError` for a missing member or a value the model cannot read
        (not finite, or not positive for a log-scaled member)."""
        columns = []
        for p in self.proxies:
            if p not in values:
                raise CalibrationError(f"no values of proxy {p!r}; the model reads {', '.join(self.proxies)}")
            v = np.asarray(values[p], dtype=np.float64)
            if v.shape != (len(archs),):
                raise CalibrationError(f"proxy {p!r}: {v.size} values for {len(archs)} architectures")
            if not np.isfinite(v).all():
                raise CalibrationError(f"proxy {p!r} has a missing or non-finite value")
            if p in self.logged:
                if (v <= 0).any():
                    raise CalibrationError(f"proxy {p!r} is read as log10 and got a value <= 0")
                v = np.log10(v)
            columns.append(v)
        proxy_part = np.column_stack(columns) if columns else np.zeros((len(archs), 0))
        if not self.encoding:
            return proxy_part
        cells = np.array([cell_encoding(a) for a in archs]).reshape(len(archs), -1)
        return np.hstack([proxy_part, cells])


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

    def describe(self) -> str:
        """One line, e.g. ``trained on 100 labels from the user's file acc.csv (column accuracy);
        features: synflow, params + NB201 cell encoding; member scores: file scores.csv.gz``."""
        setup = ", ".join(f"{k}={v}" for k, v in self.scores.items()) or "not recorded"
        return (f"trained on {self.k} labels from {self.labels.describe()}; features: "
                f"{', '.join(self.proxies) or 'none'} + NB201 cell encoding; member scores: {setup}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["proxies"] = list(self.proxies)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Provenance:
        return cls(LabelSource(**raw["labels"]), int(raw["k"]), tuple(raw["proxies"]),
                   dict(raw.get("scores") or {}), str(raw.get("created", "")), str(raw.get("sklearn", "")))


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


def default_regressor(k: int, seed: int = 0) -> Any:
    """The gradient-boosting regressor for ``k`` labels: small trees (8 leaves), shrinkage 0.05,
    300 rounds, L2 on the leaf values, and leaves of at least ``clip(k // 10, 2, 10)`` samples
    (the library's default of 20 would not split at all below 40 labels); no early stopping
    (it would hold out some of the few labels)."""
    require_sklearn()
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, max_leaf_nodes=8,
                                         min_samples_leaf=int(np.clip(k // 10, 2, 10)),
                                         l2_regularization=1.0, early_stopping=False, random_state=seed)


def rank_targets(labels: Numbers) -> np.ndarray:
    """``rank / k`` of each label (average ranks for ties): the regression target."""
    from scipy.stats import rankdata

    y = np.asarray(labels, dtype=np.float64)
    return np.asarray(rankdata(y, method="average") / len(y))


@dataclass
class CalibratedModel:
    """A fitted model: ``predict`` gives, for each architecture, the predicted rank (0..1) of
    its label among the labelled architectures (higher is better)."""

    features: FeatureSpec
    regressor: Any
    provenance: Provenance

    def predict(self, archs: Sequence[str], values: MemberValues) -> np.ndarray:
        """Predictions for ``archs``; ``values[proxy][i]`` is architecture ``i``'s member value."""
        if not archs:
            return np.zeros(0)
        x = self.features.matrix(archs, values)
        with one_thread():
            return np.asarray(self.regressor.predict(x), dtype=np.float64)

    def predict_one(self, arch: str, values: Mapping[str, float]) -> float:
        """The prediction for one architecture from its member values (the proxy's value)."""
        return float(self.predict([arch], {p: [values[p]] for p in self.features.proxies if p in values})[0])

    def describe(self) -> str:
        return self.provenance.describe()


def fit_calibration(archs: Sequence[str], values: MemberValues, labels: Numbers,
                    *, proxies: Sequence[str] | None = None, labels_from: LabelSource | None = None,
                    scores: Mapping[str, Any] | None = None, encoding: bool = True, seed: int = 0,
                    regressor: Any = None) -> CalibratedModel:
    """Fit a :class:`CalibratedModel` on ``k = len(archs)`` labelled architectures.

    Args:
        archs: NAS-Bench-201 cell strings.
        values: ``values[proxy][i]``: architecture ``i``'s value of each member proxy.
        labels: their accuracies (any scale where higher is better; only the ranks are used).
        proxies: the members (default: every key of ``values``, in order).
        labels_from / scores: provenance (where the labels and the member values came from).
        encoding: read the cell encoding too.
        seed: the regressor's seed; regressor: replaces :func:`default_regressor`.

    Raises :class:`CalibrationError` for fewer than :data:`MIN_LABELS` labels, labels that are
    all equal or not finite, or member values the model cannot read.
    """
    k = len(archs)
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
    if not members and not encoding:
        raise CalibrationError("a model needs proxies or the cell encoding to read")
    for p in members:
        if get_proxy(p).derived:
            raise CalibrationError(f"proxy {p!r} is itself derived; use the proxies it is computed from")
    spec = FeatureSpec.choose(members, {p: values[p] for p in members if p in values}, encoding)
    x = spec.matrix(archs, values)
    model = regressor if regressor is not None else default_regressor(k, seed)
    with one_thread():
        model.fit(x, rank_targets(y))
    provenance = Provenance(labels_from or LabelSource("file", "unrecorded", "accuracy"), k, members,
                            dict(scores or {}), datetime.now(UTC).isoformat(timespec="seconds"),
                            str(getattr(require_sklearn(), "__version__", "")))
    return CalibratedModel(spec, model, provenance)


# --- files --------------------------------------------------------------------------------------


def _header(model: CalibratedModel) -> dict[str, Any]:
    return {"format": FORMAT, "provenance": model.provenance.to_dict(),
            "features": {"proxies": list(model.features.proxies), "logged": list(model.features.logged),
                         "encoding": model.features.encoding},
            "target": "rank of the label among the k labelled architectures, divided by k"}


def model_bytes(model: CalibratedModel) -> bytes:
    """The saved file's bytes: a zip of ``calibration.json`` and ``model.pkl``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("calibration.json", json.dumps(_header(model), indent=2))
        z.writestr("model.pkl", pickle.dumps(model.regressor, protocol=pickle.HIGHEST_PROTOCOL))
    return buffer.getvalue()


def save_model(model: CalibratedModel, path: str | Path) -> Path:
    """Write ``model`` (header and pickled regressor) to the zip ``path``; returns it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(model_bytes(model))
    tmp.replace(path)  # a reader never sees half a file
    return path


def read_header(path: str | Path) -> dict[str, Any]:
    """``calibration.json`` of a saved model (no scikit-learn import); raises
    :class:`CalibrationError` for a file that is not one."""
    try:
        with zipfile.ZipFile(path) as z:
            header = json.loads(z.read("calibration.json"))
    except FileNotFoundError:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CalibrationError(f"{path} is not a saved calibration ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CalibrationError(f"{path}: unknown calibration format {header.get('format')!r} "
                               f"(this version reads {FORMAT})")
    return header


def _spec(header: Mapping[str, Any]) -> FeatureSpec:
    f = header["features"]
    return FeatureSpec(tuple(f["proxies"]), tuple(f["logged"]), bool(f["encoding"]))


def load_model(path: str | Path) -> CalibratedModel:
    """The model saved at ``path``; a model pickled by another scikit-learn version is refused
    (its predictions are not guaranteed), with the command to fit it again."""
    header = read_header(path)
    provenance = Provenance.from_dict(header["provenance"])
    sklearn = require_sklearn()
    if provenance.sklearn and provenance.sklearn != sklearn.__version__:
        raise CalibrationError(f"{path} was fitted with scikit-learn {provenance.sklearn}, this is "
                               f"{sklearn.__version__}; fit it again with knas calibrate")
    with zipfile.ZipFile(path) as z:
        regressor = pickle.loads(z.read("model.pkl"))  # the user's own saved model (see the module docstring)
    return CalibratedModel(_spec(header), regressor, provenance)


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
    reference = (f"knas calibrate: gradient-boosted trees (scikit-learn HistGradientBoostingRegressor) "
                 f"{provenance.describe()}")
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


__all__ = ["LONG_COLUMNS", "MIN_LABELS", "CalibratedModel", "CalibrationError", "FeatureSpec", "LabelSource",
           "Provenance", "ScoreTable", "calibrated_dir", "calibrated_proxy", "cell_encoding", "check_name",
           "default_regressor", "encoding_names", "fit_calibration", "load_model", "long_rows", "model_bytes",
           "model_path", "read_header", "read_labels", "read_long_scores", "register_calibrated",
           "save_calibrated", "save_model", "saved_calibrated_names"]
