"""The score atlas: the file format, export and import through the store (SQLite and
PostgreSQL), the automatic import into an empty store, the dashboard's labels, and a search that
takes its scores from an imported atlas instead of computing them.

``tests/data/atlas_trial.csv.gz`` is the export (``knas atlas export --torch 2.14.1``) of the
40-architecture trial run of ``benchmarks/atlas.py``: the first 40 architectures of the seed-0
permutation of NAS-Bench-201, scored by synflow, params, flops, eznas and naswot on the shipped
CIFAR-10 scoring set (batch 64, eznas 16; seed 0; cpu; C=16, N=5), one naswot failure included.
"""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from db import repository as repo
from db.atlas import AtlasImportError, export_rows, import_atlas, import_packaged_if_empty
from db.models import AtlasImport, ProxyScore, Search
from db.session import session_scope
from knas_core.atlas import (
    COLUMNS,
    PACKAGED_MAX_BYTES,
    PACKAGED_NAME,
    AtlasFileError,
    AtlasRow,
    Setup,
    read_atlas,
    write_atlas,
)

TRIAL = Path(__file__).parent / "data" / "atlas_trial.csv.gz"
SHIPPED_IMAGES = "npz:cifar10_scoring_2k500-train:6468a266f5e4"
SETUP = Setup("cifar10", SHIPPED_IMAGES, 64, 0, "cpu", "C=16,N=5", "2.14.1")
KEY = repo.ScoreKey("synflow", "cifar10", 64, 0, "cpu", "C=16,N=5", SHIPPED_IMAGES)


def _write(tmp_path: Path, text: str, name: str = "atlas.csv.gz") -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()))
    return path


def _header() -> str:
    return ",".join(COLUMNS) + "\n"


def _line(index: object = 1, proxy: str = "params", value: str = "1.5", error: str = "",
          space: str = "nb201", batch: str = "64") -> str:
    return (f"{space},{index},{proxy},{value},{error},cifar10,{SHIPPED_IMAGES},{batch},0,cpu,"
            '"C=16,N=5",2.14.1\n')


def _scores(url: str) -> list[tuple]:
    """Every score row of a store with its architecture's index, in a fixed order."""
    from db.models import Architecture

    with session_scope(url) as s:
        rows = s.execute(select(Architecture.index, ProxyScore.proxy, ProxyScore.dataset, ProxyScore.data,
                                ProxyScore.batch_size, ProxyScore.seed, ProxyScore.device_type,
                                ProxyScore.model, ProxyScore.value, ProxyScore.error)
                         .join(Architecture, Architecture.id == ProxyScore.architecture_id)).all()
    return sorted((tuple(r) for r in rows), key=repr)


# --- the file --------------------------------------------------------------------------------------

def test_the_same_rows_give_the_same_bytes_and_read_back_exactly(tmp_path):
    values = [1 / 3, 1e-310, 2.0 ** 70, -0.0, 123456789.0]  # a subnormal, a huge, a negative zero
    rows = [AtlasRow("nb201", 10 + k, "synflow", v, None, SETUP) for k, v in enumerate(values)]
    rows.append(AtlasRow("nb201", 3, "naswot", None, 'FloatingPointError: "singular",\nsee log', SETUP))
    a, b = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    write_atlas(rows, a)
    write_atlas(list(reversed(rows)), b)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes()[4:8] == b"\0\0\0\0"  # gzip time stamp 0
    atlas = read_atlas(a)
    assert [r.index for r in atlas.rows] == [3, 10, 11, 12, 13, 14]  # sorted by index, then proxy
    assert {r.index: r.value for r in atlas.rows[1:]} == dict(zip(range(10, 15), values))
    assert str(atlas.rows[1].value) == "0.3333333333333333" and atlas.rows[0].error == rows[-1].error
    assert atlas.setups == [SETUP] and atlas.proxies == ["naswot", "synflow"]


@pytest.mark.parametrize("text, message", [
    ("", "empty file"),
    ("space,index,proxy,value\n" + "nb201,1,params,1.0\n", "wrong columns (missing error, dataset"),
    (_header().replace("torch", "torch,extra") + _line().replace("\n", ",x\n"), "unexpected extra"),
    (_header() + _line(proxy="no_such_proxy"), "line 2: unknown proxy 'no_such_proxy'"),
    (_header() + _line(index=15625), "line 2: index 15625 out of range 0..15624"),
    (_header() + _line(index="x"), "line 2: index 'x' is not a whole number"),
    (_header() + _line(index=-1), "line 2: index -1 is below 0"),
    (_header() + _line(space="nb301"), "line 2: unknown search space 'nb301'"),
    (_header() + _line(value="abc"), "line 2: value 'abc' is not a number"),
    (_header() + _line(value="nan"), "line 2: value nan is not finite"),
    (_header() + _line(value="1.0", error="boom"), "line 2: give a value or an error, not both"),
    (_header() + _line(value=""), "line 2: give a value or an error, not neither"),
    (_header() + _line(batch="0"), "line 2: batch_size 0 is below 1"),
    (_header() + _line() + _line(value="2.0"), "line 3: the same score as line 2"),
    (_header() + _line().replace(",2.14.1", ""), "line 2: 11 fields, the header has 12"),
    (_header(), "no rows"),
])
def test_a_bad_file_is_refused_in_one_line(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(AtlasFileError) as err:
        read_atlas(path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_unreadable_files_are_refused_in_one_line(tmp_path):
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(gzip.compress(b"space,index\n")[:12])
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    for path, message in ((broken, "not a readable gzip file"), (binary, "not a CSV text file"),
                          (tmp_path / "missing.csv.gz", "no such file")):
        with pytest.raises(AtlasFileError, match=message) as err:
            read_atlas(path)
        assert "\n" not in str(err.value)


def test_the_cli_reports_a_bad_file_in_one_line_with_status_2(tmp_path, monkeypatch, capsys):
    from knas_cli.main import main

    url = f"sqlite:///{tmp_path / 'knas.db'}"
    monkeypatch.setenv("KNAS_DATABASE_URL", url)
    assert main(["db", "upgrade"]) == 0
    path = _write(tmp_path, _header() + _line(index=99999))
    capsys.readouterr()
    assert main(["atlas", "import", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("knas: error: atlas ") and "index 99999 out of range" in err
    assert err.count("\n") == 1


def test_a_full_size_atlas_fits_the_package_limit(tmp_path):
    """15,625 architectures x 5 proxies of random doubles (every digit significant: the worst
    case for compression) stay under the 2 MB the packaged atlas may take."""
    rng = np.random.default_rng(0)
    rows = [AtlasRow("nb201", i, p, float(v), None, SETUP)
            for p in ("synflow", "params", "flops", "eznas", "naswot")
            for i, v in enumerate(rng.lognormal(3.0, 4.0, 15625))]
    path = tmp_path / "full.csv.gz"
    assert write_atlas(rows, path) == 78125
    assert path.stat().st_size <= PACKAGED_MAX_BYTES


# --- the store --------------------------------------------------------------------------------------

def _fill(url: str) -> None:
    """Scores under two set-ups, a deterministic failure, a transient one and an architecture
    outside the index (left out of an export)."""
    from knas_core.spaces import open_space

    space = open_space("nb201")
    with session_scope(url) as s:
        ids = repo.ensure_architectures(s, "nb201", [(space.arch_at(i), i) for i in (0, 7, 15624)])
        arch = list(ids.values())
        for k, a in enumerate(arch):
            repo.save_score(s, a, KEY, 1.0 / (k + 3), None, 0.5)
            repo.save_score(s, a, repo.ScoreKey(**{**KEY.__dict__, "seed": 1, "proxy": "params"}),
                            1e5 * (k + 1), None, 0.1)
        repo.save_score(s, arch[0], repo.ScoreKey(**{**KEY.__dict__, "proxy": "naswot"}), None,
                        "FloatingPointError: singular, twice", 0.1)
        repo.save_score(s, arch[1], repo.ScoreKey(**{**KEY.__dict__, "proxy": "naswot"}), None,
                        "out of memory: CUDA", 0.1, transient=True)
        unindexed = "|none~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
        other = repo.ensure_architectures(s, "nb201", [(unindexed, None)])
        repo.save_score(s, other[unindexed], KEY, 9.0, None, 0.1)


def test_an_exported_atlas_reimported_into_an_empty_store_reproduces_its_scores(db_url, tmp_path):
    from db.migrate import upgrade

    _fill(db_url)
    with session_scope(db_url) as s:
        rows, left_out = export_rows(s, "2.14.1")
    assert left_out == 2  # the transient failure, the architecture without an index
    first = tmp_path / "first.csv.gz"
    write_atlas(rows, first)
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(fresh)
    with session_scope(fresh) as s:
        report = import_atlas(s, read_atlas(first))
    assert (report.rows, report.inserted, report.identical, report.conflicts) == (7, 7, 0, 0)
    expected = [r for r in _scores(db_url) if r[0] is not None and r[-1] != "out of memory: CUDA"]
    assert _scores(fresh) == expected  # values, errors and every key field
    with session_scope(fresh) as s:
        again, _ = export_rows(s, "2.14.1")
    second = tmp_path / "second.csv.gz"
    write_atlas(again, second)
    assert second.read_bytes() == first.read_bytes()


def test_reimport_is_a_no_op_and_a_different_score_is_reported_not_overwritten(db_url, tmp_path):
    path = tmp_path / "atlas.csv.gz"
    write_atlas([AtlasRow("nb201", 7, "synflow", 0.25, None, SETUP),
                 AtlasRow("nb201", 8, "synflow", 0.5, None, SETUP)], path)
    atlas = read_atlas(path)
    with session_scope(db_url) as s:
        first = import_atlas(s, atlas)
    with session_scope(db_url) as s:
        again = import_atlas(s, atlas)
        assert s.scalar(select(func.count()).select_from(AtlasImport)) == 1
    assert first.inserted == 2 and first.import_id is not None
    assert (again.inserted, again.identical, again.import_id) == (0, 2, None)
    assert again.summary().startswith("nothing new from atlas.csv.gz")

    changed = tmp_path / "changed.csv.gz"
    write_atlas([AtlasRow("nb201", 7, "synflow", 0.75, None, SETUP),
                 AtlasRow("nb201", 9, "synflow", 1.0, None, SETUP)], changed)
    with session_scope(db_url) as s:
        report = import_atlas(s, read_atlas(changed))
    assert (report.inserted, report.conflicts) == (1, 1)
    assert "index 7 synflow" in report.conflict_line() and "stored 0.25, atlas 0.75" in report.conflict_line()
    assert sorted(r[-2] for r in _scores(db_url)) == [0.25, 0.5, 1.0]  # index 7 kept its 0.25


def test_an_imported_score_replaces_a_transient_failure(db_url, tmp_path):
    from knas_core.spaces import open_space

    with session_scope(db_url) as s:
        arch_id = repo.ensure_architectures(s, "nb201", [(open_space("nb201").arch_at(7), 7)])
        arch_id = next(iter(arch_id.values()))
        repo.save_score(s, arch_id, KEY, None, "out of memory: CUDA", 0.1, transient=True)
    path = tmp_path / "atlas.csv.gz"
    write_atlas([AtlasRow("nb201", 7, "synflow", 0.25, None, SETUP)], path)
    with session_scope(db_url) as s:
        report = import_atlas(s, read_atlas(path))
    assert (report.inserted, report.replaced) == (1, 1)
    with session_scope(db_url) as s:
        assert repo.get_score(s, arch_id, KEY).value == 0.25


def test_a_store_indexed_otherwise_is_refused(db_url, tmp_path):
    from knas_core.spaces import open_space

    space = open_space("nb201")
    with session_scope(db_url) as s:
        repo.ensure_architectures(s, "nb201", [(space.arch_at(7), 8)])  # the wrong index
    path = tmp_path / "atlas.csv.gz"
    write_atlas([AtlasRow("nb201", 7, "synflow", 0.25, None, SETUP)], path)
    with session_scope(db_url) as s, pytest.raises(AtlasImportError, match="has index 8, the space's"):
        import_atlas(s, read_atlas(path))


# --- provenance on the dashboard ------------------------------------------------------------------------

def test_imported_scores_are_labelled_precomputed_with_their_setup(tmp_path, monkeypatch):
    from app.views import architecture, correlation
    from db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'knas.db'}"
    upgrade(url)
    monkeypatch.setenv("KNAS_DATABASE_URL", url)
    atlas = read_atlas(TRIAL)
    with session_scope(url) as s:
        import_atlas(s, atlas)
    index = atlas.rows[0].index
    # a score computed here under the atlas's set-up, for an architecture outside the atlas
    from knas_core.groundtruth import GroundTruth
    from knas_core.spaces import open_space

    outside = next(i for i in range(15625) if i not in {r.index for r in atlas.rows})
    with session_scope(url) as s:
        repo.load_ground_truth(s, GroundTruth.load(), "nb201", [outside])
        other = repo.ensure_architectures(s, "nb201", [(open_space("nb201").arch_at(outside), outside)])
        repo.save_score(s, next(iter(other.values())), repo.ScoreKey(**{**KEY.__dict__, "proxy": "params"}),
                        1.0, None, 0.1)
    lines = correlation.provenance("params", "cifar10")
    assert lines[0].startswith("precomputed atlas: cifar10, seed 0, batch 64, C=16,N=5, cpu, images "
                               f"{SHIPPED_IMAGES}, torch 2.14.1, imported ")
    assert " from atlas_trial.csv.gz (40 of 41 scores)" in lines[0]
    assert lines[1] == "computed in this store: 1 of 41 scores"
    stats = {r["proxy"]: r for r in correlation.statistics_rows()}
    assert stats["params"]["source"] == "atlas + computed" and stats["params"]["n"] == 41
    assert stats["synflow"]["source"] == "precomputed atlas" and stats["synflow"]["n"] == 40
    found = architecture.lookup(str(index))
    scores = {r["proxy"]: r for r in architecture.profile(found["id"])["scores"]}
    assert set(scores) == {"eznas", "flops", "naswot", "params", "synflow"}
    assert scores["eznas"]["source"].startswith("precomputed atlas: cifar10, seed 0, batch 16,")
    assert scores["eznas"]["source"].endswith(" from atlas_trial.csv.gz")
    computed = architecture.profile(architecture.lookup(str(outside))["id"])["scores"]
    assert [r["source"] for r in computed] == ["computed"]


def test_the_pages_show_the_label(tmp_path, monkeypatch):
    """The Correlation page writes the label under its scatter; the Architecture page's score
    table has it in its source column."""
    import streamlit as st

    from db.migrate import upgrade

    from .test_dashboard import no_exception, page

    url = f"sqlite:///{tmp_path / 'knas.db'}"
    upgrade(url)
    with session_scope(url) as s:
        import_atlas(s, read_atlas(TRIAL))
    monkeypatch.setenv("KNAS_DATABASE_URL", url)
    st.cache_data.clear()
    at = page("4_Correlation.py", proxy="synflow", dataset="cifar10")
    no_exception(at)
    captions = [re.sub(r"\\(.)", r"\1", c.value) for c in at.caption]  # Markdown escapes undone
    assert any(c.startswith("precomputed atlas: cifar10, seed 0, batch 64,") and "atlas_trial.csv.gz" in c
               for c in captions), captions
    assert set(at.dataframe[0].value["source"]) == {"precomputed atlas"}
    at = page("5_Architecture.py", arch=str(read_atlas(TRIAL).rows[0].index))
    no_exception(at)
    sources = at.dataframe[1].value["source"].tolist()
    assert len(sources) == 5 and all(x.startswith("precomputed atlas: cifar10") for x in sources)


# --- the automatic import -------------------------------------------------------------------------------

@pytest.fixture()
def packaged(tmp_path, monkeypatch):
    """A data root whose atlas the look-up order finds before the package data's (if any)."""
    root = tmp_path / "data"
    (root / Path(PACKAGED_NAME).parent).mkdir(parents=True)
    shutil.copy(TRIAL, root / PACKAGED_NAME)
    monkeypatch.setenv("KNAS_DATA_DIR", str(root))
    monkeypatch.setenv("KNAS_ATLAS_IMPORT", "1")
    return root / PACKAGED_NAME


def test_db_upgrade_imports_the_packaged_atlas_into_an_empty_store_once(packaged, tmp_path, monkeypatch,
                                                                       capsys):
    from knas_cli.main import main

    url = f"sqlite:///{tmp_path / 'knas.db'}"
    monkeypatch.setenv("KNAS_DATABASE_URL", url)
    assert main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("imported 200 of the 200 scores of nb201_atlas.csv.gz (40 "
                                               "architectures x eznas, flops, naswot, params, synflow; ")
    assert out[1].endswith("; KNAS_ATLAS_IMPORT=0 leaves a new store empty")
    assert main(["db", "upgrade"]) == 0  # the store has scores now: nothing more
    assert len(capsys.readouterr().out.splitlines()) == 1
    with session_scope(url) as s:
        assert s.scalar(select(func.count()).select_from(ProxyScore)) == 200
        record = s.scalars(select(AtlasImport)).one()
        assert record.path == str(packaged) and record.inserted == 200
    assert _scores(url) == sorted(((r.index, r.proxy, r.setup.dataset, r.setup.data, r.setup.batch_size,
                                    r.setup.seed, r.setup.device_type, r.setup.model, r.value, r.error)
                                   for r in read_atlas(TRIAL).rows), key=repr)


def test_the_automatic_import_can_be_turned_off_and_leaves_stores_with_scores_alone(packaged, db_url,
                                                                                    monkeypatch):
    monkeypatch.setenv("KNAS_ATLAS_IMPORT", "0")
    assert import_packaged_if_empty(db_url) is None
    monkeypatch.setenv("KNAS_ATLAS_IMPORT", "1")
    with session_scope(db_url) as s:
        arch_id = repo.ensure_architectures(s, "nb201", [("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                                          None)])
        repo.save_score(s, next(iter(arch_id.values())), KEY, 1.0, None, 0.1)
    assert import_packaged_if_empty(db_url) is None
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(ProxyScore)) == 1


def test_the_cli_import_defaults_to_the_packaged_atlas(packaged, tmp_path, monkeypatch, capsys):
    from knas_cli.main import main

    monkeypatch.setenv("KNAS_ATLAS_IMPORT", "0")
    monkeypatch.setenv("KNAS_DATABASE_URL", f"sqlite:///{tmp_path / 'knas.db'}")
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["atlas", "import"]) == 0
    assert capsys.readouterr().out.startswith("imported 200 of the 200 scores of nb201_atlas.csv.gz")
    assert main(["atlas", "import"]) == 0
    assert capsys.readouterr().out == \
        "nothing new from nb201_atlas.csv.gz: its 200 scores were already stored\n"
    out = tmp_path / "out.csv.gz"
    assert main(["atlas", "export", "--out", str(out), "--torch", "2.14.1"]) == 0
    assert out.read_bytes() == TRIAL.read_bytes()


# --- searches take their scores from the atlas ---------------------------------------------------------

def test_a_search_on_the_atlas_setup_computes_no_score(eager, monkeypatch, tmp_path):
    """A fresh install (package data only) imports the atlas; the New-search defaults' ensemble
    (synflow, eznas, params) on its set-up samples the atlas's first 10 architectures (a prefix of
    the same seeded permutation) and finds every score stored: nothing is computed."""
    from tasks.api import search_progress, submit_search

    monkeypatch.delenv("KNAS_DATA_DIR", raising=False)  # the shipped scoring set, as on a fresh install
    monkeypatch.setenv("KNAS_CACHE_DIR", str(tmp_path / "empty-cache"))
    with session_scope(eager) as s:
        report = import_atlas(s, read_atlas(TRIAL))
        stamps = {r.id: r.created_at for r in s.scalars(select(ProxyScore))}
    assert report.inserted == 200

    import tasks.search as tasks_search

    def computed(*args, **kwargs):
        raise AssertionError("a score was computed instead of taken from the atlas")

    monkeypatch.setattr(tasks_search, "_score_missing", computed)
    search_id = submit_search({"name": "defaults on the atlas", "dataset": "cifar10", "samples": 10,
                               "topk": 3, "proxies": ["synflow", "eznas", "params"], "seed": 0,
                               "batch_size": 64, "device": "cpu"})
    progress = search_progress(search_id)
    assert progress["status"] == "done" and progress["scored"] == 10 and progress["failed"] == 0
    with session_scope(eager) as s:
        assert {r.id: r.created_at for r in s.scalars(select(ProxyScore))} == stamps
        assert s.scalar(select(func.count()).select_from(ProxyScore)
                        .where(ProxyScore.atlas_import_id.is_(None))) == 0
        assert s.scalar(select(Search.data_id).where(Search.id == search_id)) == SHIPPED_IMAGES
