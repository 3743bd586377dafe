"""Packaging: the declared dependencies, each checkout running its own code, and a wheel that
holds everything a non-editable install needs (package data, dashboard pages, migrations)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest

from .conftest import IN_CI, ROOT
from .processes import free_port, stop, wait_http


def _locked() -> dict[str, tuple[str, str | None]]:
    """requirements.lock as {normalised name: (version, environment marker or None)}."""
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            spec, _, marker = line.partition(";")
            name, _, version = spec.strip().partition("==")
            assert version and "[" not in name, f"requirements.lock: {line!r} is not a plain pin"
            pins[canonicalize_name(name)] = (version.strip(), marker.strip() or None)
    return pins


def test_the_lock_pins_every_dependency_of_every_extra_within_its_specifier():
    """requirements.lock (``make lock``) covers the core and every extra of pyproject.toml, each
    at a version its specifier allows: after a change to the dependencies, rerun ``make lock``."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["knas"] == "knas_cli.main:main"
    extras = project["optional-dependencies"]
    assert {"web", "workers", "postgres", "discovery", "nb201", "all", "dev"} <= set(extras)
    pins = _locked()
    wanted = [(None, r) for r in project["dependencies"]] + [(e, r) for e, rs in extras.items() for r in rs]
    problems = []
    for extra, text in wanted:
        req = Requirement(text)
        where = f"[{extra}]" if extra else "dependencies"
        name = canonicalize_name(req.name)
        if name == canonicalize_name(project["name"]):  # an extra made of other extras
            assert req.extras <= set(extras), f"{where}: {text} names an unknown extra"
            continue
        if name not in pins:
            problems.append(f"{where}: {text} is not in requirements.lock")
        elif not req.specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"{where}: {text}, but requirements.lock pins {pins[name][0]}")
    assert not problems, "rerun `make lock`:\n" + "\n".join(problems)
    assert "torch" in pins and "torchvision" in pins and pins["torch"][1] is None


def test_the_environment_holds_the_locked_versions():
    """The Makefile's dependency layer was installed from this requirements.lock (its hash names
    the layer): every pin whose marker applies here is the installed version."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.markers import Marker

    _deps_site()  # skips (fails in CI) outside the Makefile's .venv
    wrong = []
    for name, (pinned, marker) in _locked().items():
        if marker and not Marker(marker).evaluate():
            continue
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "not installed"
        if installed.split("+")[0] != pinned:
            wrong.append(f"{name}: {installed}, locked {pinned}")
    assert not wrong, wrong


def test_requirements_txt_installs_the_runtime_extras_at_the_locked_versions():
    """requirements.txt (the runtime dependencies, for ``pip install -r``) names no package of
    its own: pyproject's ``[all]`` at requirements.lock's versions. Resolved offline against this
    environment (installed from the lock), it installs nothing but this checkout."""
    lines = [ln.split("#")[0].strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    assert [ln for ln in lines if ln] == ["-c requirements.lock", "-e .[all]"]
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert [Requirement(r).extras for r in extras["all"]] == [set(extras) - {"all", "dev"}]  # every one
    deps_python = _deps_site().parents[2] / "bin" / "python"
    proc = subprocess.run([str(deps_python), "-m", "pip", "--python", sys.executable, "install", "--dry-run",
                           "--no-index", "--no-build-isolation", "-r", "requirements.txt"],
                          cwd=ROOT, capture_output=True, text=True, env=_clean_env(PIP_FIND_LINKS=""),
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    would = [ln for ln in proc.stdout.splitlines() if ln.startswith("Would install")]
    assert would == [f"Would install knas-studio-{project['version']}"], proc.stdout[-2000:]


def _deps_site() -> Path:
    """The shared dependency layer this test run uses (the Makefile's ``deps-<hash>``)."""
    for entry in sys.path:
        pth = Path(entry) / "_knas_deps.pth"
        if pth.is_file():
            return Path(pth.read_text().split("addsitedir(")[1].split(")")[0].strip("'\""))
    reason = "not running from the Makefile's .venv (no _knas_deps.pth on sys.path)"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def _copy_checkout(dest: Path) -> Path:
    """The files a clone of this working tree holds (tracked and untracked, not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KNAS_DATA_DIR", "PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("PYTEST")}
    return {**env, **extra}


@pytest.mark.integration
@pytest.mark.slow
def test_two_clones_each_run_their_own_code(tmp_path):
    """Both clones share the cached dependency layer, yet `knas --version` of each names its own
    folder, also after the other one ran make (the last make used to win for every clone)."""
    deps = _deps_site().parents[3]  # <cache>/deps-<hash>/lib/pythonX.Y/site-packages
    clones = [_copy_checkout(tmp_path / name) for name in ("clone-a", "clone-b")]
    env = _clean_env()
    for clone in clones + clones[:1]:
        subprocess.run(["make", "-s", "venv", f"VENV_CACHE={deps.parent}"], cwd=clone, env=env,
                       check=True, capture_output=True, timeout=300)
    for clone in clones:
        out = subprocess.run([str(clone / ".venv" / "bin" / "knas"), "--version"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120, check=True).stdout
        assert out.startswith("knas-studio ") and out.strip().endswith(f"from {clone}"), out
        # the dashboard a clone serves is its own too
        app = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c",
                              "from knas_cli.web import app_path; print(app_path())"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
        assert Path(app.strip()) == clone / "app" / "main.py"
    assert not list(deps.glob("lib/python*/site-packages/__editable__*knas*")), \
        "the project must never be installed into the shared dependency layer"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    src = _copy_checkout(tmp_path_factory.mktemp("src"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(src)], check=True, capture_output=True, timeout=600)
    (found,) = out.glob("knas_studio-*.whl")
    return found


@pytest.mark.integration
def test_the_wheel_holds_the_package_data_pages_and_migrations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    bundled = (ROOT / "knas_core" / "bundled").rglob("*")
    shipped = {p.relative_to(ROOT).as_posix() for p in bundled if p.is_file()}
    assert shipped and shipped <= names
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "app" / "screens").glob("*.py")}
    assert pages and pages <= names and "app/main.py" in names
    versions = (ROOT / "db" / "migrations" / "versions").glob("*.py")
    migrations = {p.relative_to(ROOT).as_posix() for p in versions}
    assert migrations <= names and "db/migrations/env.py" in names
    assert not any(n.startswith(("tests/", "benchmarks/", "scripts/")) for n in names)


@pytest.mark.integration
@pytest.mark.slow
def test_a_non_editable_install_runs_score_web_and_up_from_its_package_data(wheel, tmp_path):
    """A fresh environment with the wheel installed (dependencies from the shared layer), run in
    a folder with no data, no KNAS_DATA_DIR and an empty user cache."""
    deps = _deps_site()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "_knas_deps.pth").write_text(f"import site; site.addsitedir({str(deps)!r})\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                    "--quiet", "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300)
    work = tmp_path / "work"
    work.mkdir()
    env = _clean_env(KNAS_CACHE_DIR=str(tmp_path / "empty-cache"), KNAS_STATE_DIR=str(work / ".knas"),
                     KNAS_DATABASE_URL=f"sqlite:///{work / 'knas.db'}")
    knas = str(venv / "bin" / "knas")

    version = subprocess.run([knas, "--version"], cwd=work, env=env, capture_output=True, text=True,
                             check=True).stdout
    assert version.strip().endswith(f"from {purelib}"), version

    score = subprocess.run([knas, "score", "--archs", "2", "--C", "4", "--N", "1",
                            "--proxies", "synflow,params"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert score.returncode == 0, score.stderr[-2000:]
    records = [json.loads(line) for line in score.stdout.splitlines()]
    assert len(records) == 2 and all(r["scores"]["synflow"] is not None for r in records)
    assert all(r["data"].startswith("npz:cifar10_scoring_2k500-train:") for r in records)
    assert "package" in score.stderr

    port = free_port()
    up = subprocess.Popen([knas, "up", "--port", str(port)], cwd=work, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_http(f"http://127.0.0.1:{port}/_stcore/health", 120, up) == b"ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
        deadline = time.monotonic() + 120
        log = work / "knas-worker.log"
        while time.monotonic() < deadline and "ready" not in (log.read_text() if log.exists() else ""):
            time.sleep(0.5)
        assert "ready" in log.read_text(), log.read_text()[-2000:]
    finally:
        stop(up)
    assert (work / "knas.db").exists()
