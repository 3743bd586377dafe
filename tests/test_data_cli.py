"""``knas data fetch`` and ``knas data status`` (knas_core.datasets).

Downloads go to a local HTTP server serving a small fake CIFAR-10 archive (the class's URL and
checksums are monkeypatched, as tests/test_data.py does for reading); the no-network failure is
the real one (this machine reaches no data host), through the installed entry point.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import socket
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from knas_cli.main import main
from knas_core.data import load_source
from knas_core.datasets import FetchError, data_status, fetch_dataset

from .conftest import write_cifar10_folder
from .processes import KNAS

N_FAKE = 20  # images per batch file of the fake archive: 5 x 20 train, 20 test


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture()
def fake_cifar10(tmp_path, monkeypatch):
    """A small ``cifar-10-python.tar.gz`` (in ``tmp_path/served``) whose checksums torchvision
    accepts; returns the archive's path. The class URL points at nothing (set it to serve)."""
    build = tmp_path / "build"
    write_cifar10_folder(build, n=N_FAKE)
    folder = build / "cifar-10-batches-py"
    served = tmp_path / "served"
    served.mkdir()
    archive = served / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    cls = "torchvision.datasets.CIFAR10"
    monkeypatch.setattr(f"{cls}.tgz_md5", _md5(archive))
    monkeypatch.setattr(f"{cls}.train_list", [[f"data_batch_{i}", _md5(folder / f"data_batch_{i}")]
                                              for i in range(1, 6)])
    monkeypatch.setattr(f"{cls}.test_list", [["test_batch", _md5(folder / "test_batch")]])
    monkeypatch.setattr(f"{cls}.meta", {"filename": "batches.meta", "key": "label_names",
                                        "md5": _md5(folder / "batches.meta")})
    monkeypatch.setattr(f"{cls}.url", "http://127.0.0.1:9/unreachable/cifar-10-python.tar.gz")
    return archive


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep stderr for the progress bar under test
        pass


@pytest.fixture()
def http_server(fake_cifar10):
    handler = functools.partial(_Quiet, directory=str(fake_cifar10.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


# --- fetch ------------------------------------------------------------------------------------------

def test_fetch_downloads_extracts_and_shows_a_progress_bar(tmp_path, fake_cifar10, http_server,
                                                           monkeypatch, capsys):
    monkeypatch.setattr("torchvision.datasets.CIFAR10.url", f"{http_server}/cifar-10-python.tar.gz")
    dest = tmp_path / "dest"
    code, out, err = run_cli(capsys, "data", "fetch", "cifar10", "--dir", str(dest))
    assert code == 0, err
    folder = dest / "cifar-10-batches-py"
    assert out.strip() == f"cifar10: {5 * N_FAKE:,} train + {N_FAKE:,} test images in {folder}"
    assert "cifar-10-python.tar.gz" in err and "100%" in err  # torchvision's bar, labelled, on stderr
    assert _md5(dest / "cifar-10-python.tar.gz") == _md5(fake_cifar10)
    assert len(load_source("cifar10", "torchvision", data_dir=dest)) == 5 * N_FAKE
    assert socket.getdefaulttimeout() is None  # the fetch's timeout does not leak


def test_fetch_defaults_to_knas_data_dir_then_the_user_cache(tmp_path, fake_cifar10, monkeypatch):
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / fake_cifar10.name).write_bytes(fake_cifar10.read_bytes())
    monkeypatch.setenv("KNAS_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("KNAS_CACHE_DIR", str(tmp_path / "cache"))
    assert fetch_dataset("cifar10").root == tmp_path / "env"
    monkeypatch.delenv("KNAS_DATA_DIR")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / fake_cifar10.name).write_bytes(fake_cifar10.read_bytes())
    assert fetch_dataset("cifar10").path == tmp_path / "cache" / "cifar-10-batches-py"
    with pytest.raises(ValueError, match="cannot be fetched") as info:
        fetch_dataset("imagenet16-120", tmp_path)
    assert "data_source synthetic or imagefolder" in str(info.value)  # the field, not a flag
    assert "--" not in str(info.value)  # (`knas data fetch` offers only the fetchable sets)


def test_archive_copied_into_dir_is_extracted_without_network(tmp_path, fake_cifar10, monkeypatch, capsys):
    """The URL points at a closed port: any download attempt would fail."""
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / fake_cifar10.name).write_bytes(fake_cifar10.read_bytes())
    code, out, err = run_cli(capsys, "data", "fetch", "cifar10", "--dir", str(dest))
    assert code == 0, err
    assert out.startswith(f"cifar10: {5 * N_FAKE:,} train + {N_FAKE:,} test images")
    assert (dest / "cifar-10-batches-py" / "test_batch").is_file()
    monkeypatch.setenv("KNAS_DATA_DIR", str(dest))
    status = data_status(datasets=("cifar10",))
    items = {item["kind"]: item for item in status["roots"][0]["items"]}
    assert items["torchvision"]["path"] == str(dest / "cifar-10-batches-py")
    assert items["torchvision"]["note"] == "" and items["archive"]["note"] == ""
    # auto prefers the full set of the first root; it holds the fake's 100 training images
    assert status["datasets"][0]["identity"].startswith("torchvision:cifar10-train:")
    assert status["datasets"][0]["description"].startswith(f"{5 * N_FAKE:,} train images of the full cifar10")


def test_corrupt_archive_without_network_is_one_clear_line(tmp_path, fake_cifar10, capsys):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / fake_cifar10.name).write_bytes(fake_cifar10.read_bytes()[:500])  # a cut-off copy
    code, _, err = run_cli(capsys, "data", "fetch", "cifar10", "--dir", str(dest))
    lines = error_lines(err)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("knas: error: cannot download")
    assert "does not match the official checksum; replace it" in lines[0]
    assert not (dest / "cifar-10-batches-py").exists()


def test_stalled_server_times_out(tmp_path, fake_cifar10, monkeypatch):
    """A host that accepts the connection and never answers: the fetch gives up after `timeout`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # connections complete in the kernel's backlog; nobody ever replies
    try:
        monkeypatch.setattr("torchvision.datasets.CIFAR10.url",
                            f"http://127.0.0.1:{listener.getsockname()[1]}/cifar-10-python.tar.gz")
        start = time.monotonic()
        with pytest.raises(FetchError, match="cannot download .*timed out"):
            fetch_dataset("cifar10", tmp_path / "dest", timeout=1.0)
        assert time.monotonic() - start < 30
    finally:
        listener.close()


def _network_reachable(host: str = "www.cs.toronto.edu") -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


@pytest.mark.integration
@pytest.mark.skipif(_network_reachable(), reason="the data host is reachable: this would download 170 MB")
def test_fetch_without_network_exits_2_with_one_line_quickly(tmp_path):
    start = time.monotonic()
    proc = subprocess.run([KNAS, "data", "fetch", "cifar10", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - start
    lines = error_lines(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("knas: error: cannot download"), proc.stderr
    assert f"put it in {tmp_path}" in lines[0] and "--data-dir" in lines[0]
    assert "Traceback" not in proc.stderr
    assert seconds < 60, f"took {seconds:.1f} s"


# --- status -----------------------------------------------------------------------------------------

def test_status_lists_the_package_data_when_nothing_else_is_there(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KNAS_DATA_DIR", raising=False)
    monkeypatch.setenv("KNAS_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    code, out, err = run_cli(capsys, "data", "status", "--json")
    assert code == 0, err
    status = json.loads(out)
    assert [(r["origin"], r["exists"], r["items"]) for r in status["roots"][:1]] == \
        [("user cache", True, [])]
    package = status["roots"][1]
    assert [r["origin"] for r in status["roots"]] == ["user cache", "package"]
    items = {Path(item["path"]).name: item for item in package["items"]}
    assert items["nb201_accuracies.csv.gz"]["count"] == {"rows": 15625}
    assert items["cifar10_scoring_2k500.npz"]["count"] == {"train": 2000, "test": 500}
    assert items["cifar100_subset.npz"]["count"] == {"train": 486, "test": 916}
    assert status["table"]["origin"] == "package" and status["table"]["rows"] == 15625
    used = {d["dataset"]: d for d in status["datasets"]}
    assert used["cifar10"]["identity"] == load_source("cifar10").identity
    assert used["cifar10"]["identity"].startswith("npz:cifar10_scoring_2k500-train:")
    assert "(package: " in used["cifar10"]["description"]
    assert used["imagenet16-120"]["identity"] == "synthetic:imagenet16-120:normal"
    # the human-readable form says the same
    code, out, _ = run_cli(capsys, "data", "status")
    lines = out.splitlines()
    assert lines[1] == f"1. user cache: {tmp_path / 'cache'}" and lines[2].strip() == "(nothing KNAS uses)"
    assert lines[3].startswith("2. package: ")
    assert any("cifar10_scoring_2k500.npz" in line and "2,000 train + 500 test images" in line
               for line in lines)
    assert f"identity {used['cifar10']['identity']}" in out


def test_status_reports_knas_data_dir_first(tmp_path, monkeypatch, capsys):
    root = tmp_path / "env"
    (root / "cifar10").mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(root / "cifar10" / "cifar10_10k_2k.npz",
             x_train=rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8), y_train=np.arange(30) % 10,
             x_test=rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8), y_test=np.arange(7) % 10)
    (root / "nb201").mkdir()
    (root / "nb201" / "nb201_accuracies.csv").write_text("index,arch\n0,a\n1,b\n2,c\n")
    monkeypatch.setenv("KNAS_DATA_DIR", str(root))
    monkeypatch.setenv("KNAS_CACHE_DIR", str(tmp_path / "missing-cache"))
    code, out, err = run_cli(capsys, "data", "status", "--json")
    assert code == 0, err
    status = json.loads(out)
    assert [(r["origin"], r["exists"]) for r in status["roots"]] == \
        [("KNAS_DATA_DIR", True), ("user cache", False), ("package", True)]
    first = {item["kind"]: item for item in status["roots"][0]["items"]}
    assert first["npz"]["count"] == {"train": 30, "test": 7} and first["npz"]["dataset"] == "cifar10"
    assert status["table"] == {"path": str(root / "nb201" / "nb201_accuracies.csv"),
                               "origin": "KNAS_DATA_DIR", "size_mb": 0.0, "rows": 3}
    used = {d["dataset"]: d for d in status["datasets"]}
    assert used["cifar10"]["identity"].startswith("npz:cifar10_10k_2k-train:")
    assert used["cifar10"]["description"].startswith("30 train images") and "KNAS_DATA_DIR" in \
        used["cifar10"]["description"]
    assert "(package: " in used["cifar100"]["description"]  # not in the first root: the next one holding it
    # an explicit --data-dir is the only place searched for images (as in a search)
    code, out, _ = run_cli(capsys, "data", "status", "--json", "--data-dir", str(tmp_path / "missing-cache"))
    assert code == 0
    used = {d["dataset"]: d for d in json.loads(out)["datasets"]}
    assert "does not exist" in used["cifar10"]["error"]


def test_status_reports_an_extracted_folder_and_an_unextracted_archive(tmp_path, monkeypatch):
    write_cifar10_folder(tmp_path)
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"not really")
    monkeypatch.setenv("KNAS_DATA_DIR", str(tmp_path))
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    items = data_status(datasets=())["roots"][0]["items"]
    by_kind = {(item["kind"], item["dataset"]): item for item in items}
    assert by_kind[("torchvision", "cifar10")]["note"] == "incomplete: missing data_batch_3"
    assert "knas data fetch cifar100 --dir" in by_kind[("archive", "cifar100")]["note"]
