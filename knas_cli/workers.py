"""``knas worker | submit | status | cancel | db``: the queue and the results store."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path

from knas_cli.errors import UsageError


def add_worker_arguments(w: argparse.ArgumentParser) -> None:
    """The options of ``knas worker``."""
    w.add_argument("--queues", default="score,train", help="comma-separated: score, train")
    w.add_argument("--concurrency", type=int, default=1, help="parallel tasks in this worker")
    w.add_argument("--pool", default="auto", choices=["auto", "prefork", "solo", "threads"],
                   help="auto: solo/threads when CUDA is present (no fork after CUDA init), else prefork")
    w.add_argument("--threads", type=int, default=None,
                   help="torch threads per worker process (default: $OMP_NUM_THREADS, else CPU cores "
                        "divided by --concurrency)")
    w.add_argument("--name", default=None, help="worker node name (default knas-<pid>@host)")
    w.add_argument("--loglevel", default="info")
    w.set_defaults(run=run_worker)


def add_submit_arguments(s: argparse.ArgumentParser) -> None:
    """The options of ``knas submit``."""
    s.add_argument("config", metavar="CONFIG.yaml")
    s.add_argument("--json", action="store_true", help='print {"id": ...}')
    s.add_argument("--wait", action="store_true",
                   help="follow progress until the search ends; exit 1 unless it is done")
    s.set_defaults(run=run_submit)


def add_status_arguments(st: argparse.ArgumentParser) -> None:
    """The options of ``knas status``."""
    st.add_argument("id", type=int)
    st.add_argument("--json", action="store_true")
    st.set_defaults(run=run_status)


def add_cancel_arguments(c: argparse.ArgumentParser) -> None:
    """The options of ``knas cancel``."""
    c.description = "Stop a search; one that has already ended is left as it is (says so, exit status 0)."
    c.add_argument("id", type=int)
    c.set_defaults(run=run_cancel)


def add_db_arguments(d: argparse.ArgumentParser) -> None:
    """The actions of ``knas db`` and their options."""
    dsub = d.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dsub.add_parser("upgrade", help="apply Alembic migrations (KNAS_DATABASE_URL)")
    up.set_defaults(run=run_db_upgrade)
    gt = dsub.add_parser("load-groundtruth", help="store the benchmark table's accuracies")
    gt.add_argument("--data-dir", default=None, help="where nb201/nb201_accuracies.csv lives")
    gt.add_argument("--benchmark-file", default=None, metavar="NB201.pth",
                    help="official NAS-Bench-201 .pth instead (needs the nb201 extra: nas-bench-201)")
    gt.set_defaults(run=run_db_load_groundtruth)


def _pool(choice: str, concurrency: int) -> str:
    if choice != "auto":
        return choice
    import torch

    if torch.cuda.is_available():
        return "solo" if concurrency == 1 else "threads"
    return "prefork"


def run_worker(args: argparse.Namespace) -> int:
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    unknown = sorted(set(queues) - {"score", "train"})
    if not queues or unknown:
        raise UsageError(f"--queues takes score and/or train, got {args.queues!r}")
    if args.concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    from knas_core.device import thread_budget

    threads = args.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or thread_budget(args.concurrency)
    os.environ["KNAS_TORCH_THREADS"] = str(threads)  # read by every pool process at start
    from db.migrate import check_schema
    from tasks.celery_app import app, apply_thread_budget  # a missing [workers] extra says so first

    check_schema()  # `knas db upgrade` migrates; a worker never does

    apply_thread_budget()

    name = args.name or f"knas-{os.getpid()}@{socket.gethostname()}"
    argv = ["worker", "-Q", ",".join(queues), "-c", str(args.concurrency),
            "-P", _pool(args.pool, args.concurrency), "-n", name, "-l", args.loglevel,
            "--without-gossip", "--without-mingle"]
    app.worker_main(argv)
    return 0


def _unique_key_loader():  # noqa: ANN202 - a yaml.SafeLoader subclass
    """A safe YAML loader that rejects a key given twice in one mapping (plain PyYAML keeps the
    last one silently: ``seed: 1`` then ``seed: 2`` would run seed 2)."""
    import yaml

    class DuplicateKeyError(yaml.YAMLError):
        pass

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` may be overridden by the keys beside it
            key = loader.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the standard constructor says so
                continue
            if duplicate:
                raise DuplicateKeyError(f"key {key!r} is given twice (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return loader.construct_mapping(node, deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return UniqueKeyLoader


def _load_config(path: str) -> dict:
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"config file {path!r} not found")
    import yaml

    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=_unique_key_loader())  # a SafeLoader
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of search fields at the top level")
    return data


def run_submit(args: argparse.Namespace) -> int:
    from db.migrate import check_schema
    from db.status import Status
    from knas_core.optional import require
    from tasks.api import submit_search

    require("celery", "workers", "knas submit")  # before the config and the store: say it first
    config = _load_config(args.config)
    from tasks.preflight import check_data_dir
    from tasks.schema import load_config

    # field errors before writing to the database (read only for a proxy this process lacks:
    # one promoted into it)
    check_data_dir(load_config(config))
    check_schema()
    search_id = submit_search(config)
    for warning in search_id.warnings:
        print(f"knas: warning: {warning}", file=sys.stderr)
    print(json.dumps({"id": int(search_id)}) if args.json else int(search_id), flush=True)
    if not args.wait:
        return 0
    final = _follow(search_id)
    print(json.dumps(final) if args.json else _describe(final))
    return 0 if final["status"] == Status.DONE else 1


def _follow(search_id: int, poll: float = 1.0) -> dict:
    """Show a progress bar on stderr until the search reaches a terminal status."""
    import time

    from tqdm import tqdm

    from db.status import Status

    with tqdm(desc=f"search {search_id}", unit="arch", file=sys.stderr) as bar:
        while True:
            p = _progress(search_id)
            bar.total = p["total"] or None
            bar.n = p["scored"]
            bar.set_postfix_str(f"{p['status']}/{p['stage']}")
            if p["status"] in Status.ENDED:
                bar.refresh()
                return p
            time.sleep(poll)


def _describe(p: dict) -> str:
    text = f"search {p['id']}: {p['status']}"
    if p["best"]:
        b = p["best"]
        text += f"; best {b['arch']} (index {b['index']}, score {b['score']}"
        if b.get("test_acc"):
            text += ", 200-epoch test acc " + ", ".join(f"{k} {v:.2f}" for k, v in b["test_acc"].items())
        text += ")"
    if p.get("data_description"):
        text += f"; images: {p['data_description']}"
    if p["error"]:
        text += f"; error: {p['error']}"
    return text


def _progress(search_id: int) -> dict:
    from tasks.api import search_progress

    try:
        return search_progress(search_id)
    except KeyError:
        raise UsageError(f"no search with id {search_id}; `knas submit CONFIG.yaml` starts one") from None


def run_status(args: argparse.Namespace) -> int:
    from db.migrate import check_schema

    check_schema()
    p = _progress(args.id)
    if args.json:
        print(json.dumps(p))
        return 0
    rate = f"{p['rate']:.2f} {p['rate_unit']}/s" if p["rate"] else "-"
    eta = f"{p['eta_seconds']:.0f} s" if p["eta_seconds"] else "-"
    print(f"search {p['id']} {p['name']!r}: {p['status']} (stage {p['stage']}), scored "
          f"{p['scored']}/{p['total']} ({p['failed']} failed), {rate}, ETA {eta}")
    if p["best"]:
        print(f"best: {p['best']['arch']} (index {p['best']['index']}, score {p['best']['score']})")
    if p["error"]:
        print(f"error: {p['error']}")
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    from db.migrate import check_schema
    from db.status import Status
    from tasks.api import cancel_search

    check_schema()
    try:
        p = cancel_search(args.id)
    except KeyError:
        raise UsageError(f"no search with id {args.id}") from None
    if p["already_ended"]:  # exit 0: cancel is idempotent, and a search may end just before
        print(f"search {p['id']} already ended: {p['status']}; nothing to cancel")
        return 0
    print(f"search {p['id']}: {p['status']}" + (" (stopping)" if p["status"] == Status.RUNNING else ""),
          file=sys.stdout)
    return 0


def run_db_upgrade(args: argparse.Namespace) -> int:
    from db.migrate import current_revision, upgrade

    upgrade()
    print(f"database at revision {current_revision()}")
    atlas_line = import_packaged_atlas()
    if atlas_line:
        print(atlas_line)
    return 0


def import_packaged_atlas() -> str | None:
    """Import the packaged score atlas into the store when it holds no score yet (see
    :func:`db.atlas.import_packaged_if_empty`); the line to print, or None when nothing was done."""
    from db.atlas import import_packaged_if_empty

    report = import_packaged_if_empty()
    if report is None or not report.inserted:
        return None
    return f"{report.summary()}; KNAS_ATLAS_IMPORT=0 leaves a new store empty"


def run_db_load_groundtruth(args: argparse.Namespace) -> int:
    from db.migrate import check_schema
    from db.repository import load_ground_truth
    from db.session import session_scope
    from knas_core.groundtruth import GroundTruth

    if args.benchmark_file:
        truth = GroundTruth.from_pth(args.benchmark_file)
    else:
        truth = GroundTruth.load(args.data_dir)
    check_schema()
    with session_scope() as session:
        rows = load_ground_truth(session, truth)
    print(f"stored {len(truth.frame)} architectures and {rows} accuracies")
    return 0
