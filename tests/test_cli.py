"""The ``knas`` command-line contract, through the installed entry point."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from knas_core.data import load_source
from knas_core.evaluation import correlate_records, read_records
from knas_core.stats import correlate

from .conftest import ARCH
from .processes import KNAS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--C", "4", "--N", "1", "--batch-size", "16"]


def knas(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([KNAS, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env} if env else None)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "scores.jsonl"
    proc = knas("score", "--space", "nb201", "--archs", "6", "--seed", "3",
                "--proxies", "knas,synflow,params", "--dataset", "cifar10", *SMALL, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_score_writes_one_record_per_architecture(scored, space, truth):
    out, proc = scored
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6
    assert [r["arch"] for r in records] == space.sample(6, seed=3)
    source = load_source("cifar10")  # the images the command finds by the same look-up order
    for r in records:
        assert set(r) == {"index", "arch", "scores", "errors", "seconds", "data"}
        assert r["data"] == source.identity
        assert truth.frame.loc[r["index"], "arch"] == r["arch"]
        assert set(r["scores"]) == {"knas", "synflow", "params"}
        assert all(isinstance(v, float) for v in r["scores"].values())
        assert r["errors"] == {}
        assert all(v >= 0 for v in r["seconds"].values())
    assert "scoring" in proc.stderr  # progress bar on stderr
    assert f"images: {source.description}" in proc.stderr


def test_correlate_prints_the_contract(scored, truth):
    out, _ = scored
    proc = knas("correlate", str(out), "--dataset", "cifar10", "--metric", "test")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["n"] == 6 and set(result["proxies"]) == {"knas", "synflow", "params"}
    records = list(read_records(out))
    acc = [truth.frame.loc[r["index"], "cifar10_test_acc"] for r in records]
    expected = correlate([r["scores"]["knas"] for r in records], acc)
    assert result["proxies"]["knas"] == pytest.approx(
        {"kendall": expected.kendall, "spearman": expected.spearman,
         "top10_precision": expected.top10_precision, "dropped": 0})
    valid = json.loads(knas("correlate", str(out), "--metric", "valid").stdout)
    assert valid == correlate_records(records, truth, "cifar10", "valid")


def test_score_by_arch_and_indices_agree(tmp_path, truth):
    index = int(truth.index_of(ARCH))
    by_arch = knas("score", "--arch", ARCH, "--proxies", "nasi", *SMALL)
    by_index = knas("score", "--indices", str(index), "--proxies", "nasi", *SMALL)
    assert by_arch.returncode == 0 and by_index.returncode == 0, by_arch.stderr + by_index.stderr
    a, b = json.loads(by_arch.stdout), json.loads(by_index.stdout)
    assert a["index"] == b["index"] == index
    assert a["scores"]["nasi"] == b["scores"]["nasi"]


@pytest.mark.parametrize("args, fragment", [
    (["score", "--proxies", "nope"], "unknown proxy 'nope'"),
    (["score", "--arch", "|nor_conv_3x3~0|+|bad~0|none~1|+|none~0|none~1|none~2|"],
     "unknown operation 'bad'"),
    (["score", "--data-dir", "/definitely/missing", "--archs", "2"], "does not exist"),
    (["score", "--indices", "1,x"], "comma-separated integers"),
    (["score", "--indices", "99999"], "out of range"),
    (["correlate", "/no/such/file.jsonl"], "not found"),
    (["correlate", "/etc/passwd", "--benchmark-file", "/etc/passwd"],
     "/etc/passwd is not a NAS-Bench-201 benchmark file"),
    (["correlate", "/etc/passwd", "--benchmark-file", "/no/such.pth"],
     "benchmark file '/no/such.pth' not found"),
    (["score", "--C", "0"], "--C (stem width) must be between 1 and 256, got 0"),
    (["score", "--N", "-1"], "--N (cells per stage) must be between 0 and 20, got -1"),
])
def test_bad_input_exits_nonzero_with_one_line(args, fragment):
    proc = knas(*args)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("knas: error:")
    assert fragment in lines[0]
    assert "Traceback" not in proc.stderr


def test_failed_proxy_is_recorded_not_fatal(tmp_path):
    proc = knas("score", "--indices", "0", "--proxies", "knas_official,params", "--C", "4", "--N", "1",
                "--dataset", "cifar100", "--data-source", "synthetic")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["scores"]["params"] > 0 and record["scores"]["knas_official"] is not None
    broken = knas("score", "--indices", "0", "--proxies", "oom_proxy,params", "--C", "4", "--N", "1",
                  env={"KNAS_PLUGINS": "tests.plugins.faulty", "PYTHONPATH": str(ROOT)})
    assert broken.returncode == 0, broken.stderr
    record = json.loads(broken.stdout)
    assert record["scores"]["oom_proxy"] is None and record["scores"]["params"] > 0
    assert record["errors"]["oom_proxy"].startswith("out of memory")


def test_correlate_rejects_malformed_lines(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"arch": "x", "scores": {}}\nnot json\n')
    proc = knas("correlate", str(bad))
    assert proc.returncode == 2 and "bad.jsonl:2" in proc.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_is_a_clear_error():
    proc = knas("score", "--device", "cuda", "--archs", "1", *SMALL)
    assert proc.returncode == 2 and "no CUDA GPU" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("strategy, extra", [
    ("knas", ["--samples", "8", "--topk", "3"]),
    ("random", ["--topk", "4"]),
    ("evolution", ["--samples", "10", "--topk", "2", "--proxies", "synflow,naswot"]),
    ("nasi", ["--steps", "2", "--batch-size", "8"]),
])
def test_search_contract(strategy, extra, truth):
    proc = knas("search", "--strategy", strategy, "--dataset", "cifar10", "--C", "4", "--N", "1",
                "--seed", "2", "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert truth.frame.loc[out["index"], "arch"] == out["arch"]
    assert out["test_acc"] == pytest.approx({
        "cifar10": truth.frame.loc[out["index"], "cifar10_test_acc"],
        "cifar100": truth.frame.loc[out["index"], "cifar100_test_acc"],
        "imagenet16-120": truth.frame.loc[out["index"], "imagenet16_120_test_acc"]})
    assert out["percentile"] == pytest.approx(truth.percentile(out["test_acc"]["cifar10"], "cifar10"))
    assert out["seconds"] > 0 and out["strategy"] == strategy


def test_search_refuses_bad_ensemble_weights():
    """One line and exit status 2 (the messages: test_cli_main)."""
    proc = knas("search", "--proxies", "synflow,eznas=0", "--samples", "3", "--topk", "1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--proxies" in proc.stderr and "eznas: a weight must be > 0" in proc.stderr


def test_search_rejects_topk_above_samples():
    proc = knas("search", "--samples", "3", "--topk", "5")
    assert proc.returncode == 2 and "cannot exceed" in proc.stderr


def test_search_with_real_training(truth):
    proc = knas("search", "--strategy", "knas", "--samples", "3", "--topk", "2", "--eval", "train",
                "--epochs", "1", "--train-subset", "64", "--C", "4", "--N", "1", "--batch-size", "16",
                "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["eval"] == "train" and out["evaluated"] == 2
    assert 0.0 <= out["accuracy"] <= 100.0  # a trained test accuracy, not the table's
    assert truth.frame.loc[out["index"], "arch"] == out["arch"]
