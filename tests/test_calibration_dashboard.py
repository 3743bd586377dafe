"""The Calibration page: its view fits from uploaded bytes as ``knas calibrate --scores`` does,
names the uploads (not its temporary files) in messages, and the page lists the saved models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app.main import PAGES, page_order
from app.views import calibration as view
from knas_core.calibration import CalibrationError
from knas_core.proxies import PROXIES, get_proxy

MAIN = str(Path(__file__).resolve().parent.parent / "app" / "main.py")


@pytest.fixture()
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("KNAS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("KNAS_READ_ONLY", raising=False)
    monkeypatch.delenv("KNAS_LAB_TOKEN", raising=False)
    before = set(PROXIES.names())
    yield tmp_path
    for name in set(PROXIES.names()) - before:
        PROXIES.remove(name)


@pytest.fixture()
def upload(truth):
    """A long-format scores file of 40 architectures, as bytes, and its indices."""
    rng = np.random.default_rng(0)
    indices = [int(i) for i in rng.choice(len(truth.frame), 40, replace=False)]
    rows = [{"index": i, "proxy": "params", "value": float(truth.frame.loc[i, "params_mb_cifar10"])}
            for i in indices]
    return pd.DataFrame(rows).to_csv(index=False).encode(), indices


def test_fitting_from_uploads_saves_a_proxy(state, upload, truth):
    scores, indices = upload
    result = view.run_calibration("dash", scores, "atlas.csv", lookup=15)
    assert result["proxy"] == "calibrated:dash" and result["k"] == 15 and len(result["ranking"]) == 25
    assert "atlas.csv (uploaded)" in result["description"]
    labels = pd.DataFrame({"index": indices[:8], "accuracy": np.arange(8.0)}).to_csv(index=False).encode()
    mine = view.run_calibration("mine", scores, "atlas.csv", labels=labels, labels_name="lab.csv")
    assert "the user's file lab.csv (uploaded)" in mine["description"]
    assert get_proxy("calibrated:mine").members == ("params",)
    assert [r["proxy"] for r in view.saved()] == ["calibrated:dash", "calibrated:mine"]


def test_messages_name_the_upload_not_the_temporary_file(state, upload):
    scores, _ = upload
    bad = b"index,accuracy\n1,high\n"
    with pytest.raises(CalibrationError) as info:
        view.run_calibration("x", scores, "atlas.csv", labels=bad, labels_name="lab.csv")
    assert str(info.value).startswith("labels.csv, row 2: accuracy 'high' is not a number")
    assert "knas-calibrate-" not in str(info.value)
    with pytest.raises(CalibrationError, match="expected a .csv, .csv.gz or .jsonl"):
        view.run_calibration("x", scores, "atlas.xlsx", lookup=10)
    with pytest.raises(CalibrationError, match="either a number of architectures to look up or a labels"):
        view.run_calibration("x", scores, "atlas.csv")


def test_pages_sort_by_number():
    names = [Path(p).name for p in sorted(["screens/10_Calibration.py", "screens/9_Operations.py",
                                           "screens/1_Searches.py"], key=lambda p: page_order(Path(p)))]
    assert names == ["1_Searches.py", "9_Operations.py", "10_Calibration.py"]
    pages = [p.name for p in sorted(PAGES.glob("[!_]*.py"), key=page_order)]
    assert pages[0] == "1_Searches.py" and pages[-1] == "10_Calibration.py"  # Searches stays the default


def test_the_page_lists_saved_models(state, upload, monkeypatch, tmp_path):
    from db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'knas.db'}"
    upgrade(url)  # the dashboard checks the store's schema before any page
    monkeypatch.setenv("KNAS_DATABASE_URL", url)
    view.run_calibration("listed", upload[0], "atlas.csv", lookup=12)
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    at.switch_page("screens/10_Calibration.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Few-shot calibration"
    saved = at.dataframe[0].value
    assert list(saved["proxy"]) == ["calibrated:listed"] and "trained on 12 labels" in saved["description"][0]
    assert not at.button[0].disabled  # writable by default
