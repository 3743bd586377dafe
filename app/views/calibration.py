"""Data of the Calibration page (no Streamlit here, so they are testable alone): the saved
few-shot calibrated proxies, and one calibration from uploaded files, run as ``knas calibrate
--scores`` runs it (:func:`knas_core.calibration.calibrate`) and saved as ``calibrated:NAME``.

Only a scores file is taken (scoring in the dashboard's process would hold the page for
minutes); labels are an uploaded CSV or looked up in the benchmark table.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from knas_core.calibration import (
    CalibrationError,
    LabelSource,
    calibrate,
    check_name,
    draw_indices,
    lookup_labels,
    read_header,
    read_labels,
    read_long_scores,
    require_sklearn,
    save_calibrated,
    select_proxies,
)
from knas_core.errors import InputError
from knas_core.groundtruth import GroundTruth, accuracy_column, canonical_dataset
from knas_core.proxies import CALIBRATED_PREFIX
from knas_core.spaces import open_space

#: The suffixes a scores upload may have (``read_long_scores`` reads them).
SCORE_SUFFIXES = (".csv", ".csv.gz", ".gz", ".jsonl")


def saved() -> list[dict[str, Any]]:
    """Every model in the state folder: proxy name, k, description, when; unreadable files are
    listed with the reason."""
    from knas_core.calibration import Provenance, calibrated_dir, saved_calibrated_names

    rows = []
    for proxy in saved_calibrated_names():
        path = calibrated_dir() / f"{proxy.removeprefix(CALIBRATED_PREFIX)}.calib.zip"
        try:
            provenance = Provenance.from_dict(read_header(path)["provenance"])
        except (InputError, KeyError, TypeError, ValueError) as exc:
            rows.append({"proxy": proxy, "k": None, "description": f"unreadable: {exc}", "created": None})
            continue
        rows.append({"proxy": proxy, "k": provenance.k, "description": provenance.describe(),
                     "created": provenance.created})
    return rows


def _suffix(filename: str) -> str:
    name = filename.lower()
    for suffix in SCORE_SUFFIXES:
        if name.endswith(suffix):
            return ".csv.gz" if suffix == ".gz" else suffix
    raise CalibrationError(f"scores file {filename!r}: expected a .csv, .csv.gz or .jsonl file")


def run_calibration(name: str, scores: bytes, scores_name: str, *, lookup: int | None = None,
                    labels: bytes | None = None, labels_name: str = "labels.csv",
                    label_column: str = "accuracy", dataset: str = "cifar10", metric: str = "test",
                    seed: int = 0, replace: bool = False) -> dict[str, Any]:
    """Fit on the uploaded scores (``scores``, named ``scores_name``) with ``lookup`` labels
    looked up in the benchmark table or the uploaded ``labels``; save as ``calibrated:NAME``.

    Returns ``{"proxy", "k", "dropped", "description", "ranking"}`` (the ranking of the
    unlabelled architectures, a frame). Raises :class:`~knas_core.errors.InputError` (one line,
    naming the uploads, not the temporary files) for anything the user can fix."""
    require_sklearn()
    check_name(name)
    if (lookup is None) == (labels is None):
        raise CalibrationError("give either a number of architectures to look up or a labels file")
    dataset = canonical_dataset(dataset)
    accuracy_column(dataset, metric)
    with tempfile.TemporaryDirectory(prefix="knas-calibrate-") as tmp:
        try:
            return _run(name, Path(tmp), scores, scores_name, lookup, labels, labels_name, label_column,
                        dataset, metric, seed, replace)
        except InputError as exc:
            message = str(exc).replace(f"{tmp}/", "")
            raise CalibrationError(message) from None


def _run(name: str, tmp: Path, scores: bytes, scores_name: str, lookup: int | None, labels: bytes | None,
         labels_name: str, label_column: str, dataset: str, metric: str, seed: int,
         replace: bool) -> dict[str, Any]:
    scores_path = tmp / f"scores{_suffix(scores_name)}"
    scores_path.write_bytes(scores)
    table = read_long_scores(scores_path)
    values = select_proxies(table, None, scores_name)
    truth = GroundTruth.load()
    space = open_space("nb201", archs_in_index_order=truth.archs)
    if lookup is not None:
        chosen = draw_indices(values.index, lookup, seed)
        labelled, source = lookup_labels(truth, chosen, dataset, metric)
    else:
        labels_path = tmp / "labels.csv"
        labels_path.write_bytes(labels or b"")
        labelled = read_labels(labels_path, space, label_column)
        source = LabelSource("file", f"{labels_name} (uploaded)", label_column)
    result = calibrate(values, labelled, space, source=source, seed=seed, where=scores_name,
                       setup={"file": f"{scores_name} (uploaded)", **table.setup})
    save_calibrated(result.model, name, replace=replace)
    return {"proxy": CALIBRATED_PREFIX + check_name(name), "k": result.model.provenance.k,
            "dropped": result.dropped, "description": result.model.describe(), "ranking": result.ranking}
