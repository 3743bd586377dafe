"""Scoring throughput: every proxy's time as a multiple of one bare forward+backward pass.

For each sampled architecture (full-size networks by default, C=16, N=5), on one batch of the
dataset, this times (the minimum of ``--repeats`` runs, after one untimed warm-up arch):

* ``F+B``: the limit, one bare forward + cross-entropy backward of the network on the batch;
* every registered proxy on its own, on an already built network (``eznas`` and
  ``knas_official`` use the 16 and 50 images their papers prescribe; still divided by the F+B
  of the full batch);
* the bundle {knas, nasi, grad_norm, snip, naswot, jacob_cov, params, flops} from shared passes
  (:func:`knas_core.proxies.shared.shared_scores`);
* the naive reference: for every bundle proxy a fresh ``copy.deepcopy`` of the network and the
  proxy's own passes (as the common zero-cost-nas code does), summed;
* the six measures of zero-cost-nas (:data:`ZERO_COST_NAS`: grad_norm, snip, grasp, fisher,
  jacob_cov, synflow) as ``Scorer.score`` computes them on one network (grasp's
  Hessian-gradient product and fisher's activation gradients on the shared passes, synflow on
  its own), against the reference that works as zero-cost-nas's ``find_measures`` does: a
  ``copy.deepcopy`` of the network per measure and the measure's own passes as the released
  code runs them (:data:`RELEASED`: grasp with its separate first forward+backward, fisher with
  the weight gradients of ``loss.backward()``); the values of the two are compared as well;
* KNAS's released per-sample loop: 50 forward+backward passes of one image each;
* building the network, and ``Scorer.score(arch, bundle)`` end to end (build + shared passes);
* parts of the bundle (:data:`BREAKDOWN`): the batch-statistics pass alone (nasi, grad_norm,
  snip), with jacob_cov's input backward, with naswot's kernel, with flops's counting hooks, with
  fisher's layer outputs and their gradients, and knas's per-sample pass, so the report shows
  what each shared quantity adds.

Multiples are per architecture, then the median over architectures. Then ``--scale-archs``
architectures are scored end to end (``Scorer.score`` with the bundle) by one worker process
using every core, and by two worker processes each scoring half with half the cores (on a GPU
both share the device); both start together after loading, and the wall time is taken from the
start to the last finish. The projection for all 15,625 architectures divides 15,625 by the
measured throughput. Only torch, numpy, pandas, scipy and tqdm are imported (no Celery or
database), so it runs on a bare GPU machine::

    PYTHONPATH=. KNAS_DATA_DIR=<data> python3 benchmarks/throughput.py --device cuda --archs 50

Prints a markdown table and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from knas_core.data import Batch
from knas_core.proxies import get_proxy, proxy_names
from knas_core.proxies.base import prunable_layers
from knas_core.proxies.second_order import LayerOutputs, fisher_of, grasp_of
from knas_core.proxies.shared import SHARED_PROXIES, shared_scores
from knas_core.scoring import Scorer

BUNDLE = ["knas", "nasi", "grad_norm", "snip", "naswot", "jacob_cov", "params", "flops"]
SINGLE_GRADIENT = ["knas", "nasi", "grad_norm", "snip"]
BATCH_GRADIENT = ["nasi", "grad_norm", "snip"]
#: Parts of the bundle's shared passes, timed to show where its cost goes.
BREAKDOWN = {"pass:batch": BATCH_GRADIENT,
             "pass:batch+jacob_cov": [*BATCH_GRADIENT, "jacob_cov"],
             "pass:batch+naswot": [*BATCH_GRADIENT, "naswot"],
             "pass:batch+flops": [*BATCH_GRADIENT, "flops"],
             "pass:batch+fisher": [*BATCH_GRADIENT, "fisher"],
             "pass:knas": ["knas"]}
#: The measures of zero-cost-nas's ``find_measures`` (Abdelfattah et al., ICLR 2021).
ZERO_COST_NAS = ["grad_norm", "snip", "grasp", "fisher", "jacob_cov", "synflow"]
SPACE_SIZE = 15_625
LOOP_SAMPLES = 50
TARGET_BUNDLE, TARGET_SINGLE = 2.5, 1.2
#: Issue 17.1: the six zero-cost-nas measures at most 7.5x F+B, at least 2x faster than naive.
TARGET_ZC, TARGET_ZC_SPEEDUP = 7.5, 2.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Minimum wall seconds of ``repeats`` calls of ``fn`` (device synchronised around each).

    A proxy that fails (e.g. ``naswot`` on a network whose cells are cut) is timed up to its
    failure, as the scorer would spend that time too.
    """
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        with contextlib.suppress(FloatingPointError, ValueError):
            fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def bare_forward_backward(model: torch.nn.Module, batch: Batch) -> None:
    """The limit: one forward and one cross-entropy backward (into ``.grad``)."""
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(batch.inputs), batch.targets).backward()


def naive_bundle(model: torch.nn.Module, scorer: Scorer) -> None:
    """One deep copy of the network and the proxy's own passes per bundle proxy."""
    for name in BUNDLE:
        proxy = get_proxy(name)
        proxy(copy.deepcopy(model), scorer.batch(proxy.batch_size or scorer.batch_size))


def released_grasp(model: torch.nn.Module, batch: Batch) -> float:
    """GraSP as zero-cost-nas's ``compute_grasp_per_weight`` runs it: a first forward+backward
    for the constant gradient, a second forward and a ``create_graph`` backward, then H g."""
    weights = [m.weight for m in prunable_layers(model)]
    loss = F.cross_entropy(model(batch.inputs), batch.targets)
    g = [t.detach() for t in torch.autograd.grad(loss, weights, allow_unused=True,
                                                 materialize_grads=True)]
    loss = F.cross_entropy(model(batch.inputs), batch.targets)
    grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True,
                                materialize_grads=True)
    z = torch.stack([(gi * fi).sum() for gi, fi in zip(g, grads, strict=True)]).sum()
    return grasp_of(weights, torch.autograd.grad(z, weights, allow_unused=True, materialize_grads=True))


def released_fisher(model: torch.nn.Module, batch: Batch) -> float:
    """fisher as zero-cost-nas's ``compute_fisher_per_weight`` runs it: the layer outputs' gradients
    from ``loss.backward()``, which computes every weight gradient as well."""
    outputs = LayerOutputs(model)
    try:
        logits = model(batch.inputs)
    finally:
        outputs.remove()
    for t in outputs.tensors:
        t.retain_grad()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(logits, batch.targets).backward()
    return fisher_of(outputs, [t.grad for t in outputs.tensors])


#: The measures whose released procedure differs from ours on our own; the others run the
#: same passes as the released code.
RELEASED: dict[str, Callable[[torch.nn.Module, Batch], float]] = {
    "grasp": released_grasp, "fisher": released_fisher}


def naive_zero_cost_nas(model: torch.nn.Module, batch: Batch) -> dict[str, float | Exception]:
    """As ``find_measures``: a deep copy of the network and the measure's released passes, per
    measure of :data:`ZERO_COST_NAS` (a measure that fails, e.g. jacob_cov on zero-variance
    Jacobians, gives its exception and the others still run)."""
    out: dict[str, float | Exception] = {}
    for name in ZERO_COST_NAS:
        try:
            out[name] = float(RELEASED.get(name, get_proxy(name))(copy.deepcopy(model), batch))
        except (FloatingPointError, ValueError) as exc:
            out[name] = exc
    return out


def shared_zero_cost_nas(model: torch.nn.Module, batch: Batch) -> dict[str, float | Exception]:
    """The six as ``Scorer.score`` computes them on one network: those of
    :data:`~knas_core.proxies.shared.SHARED_PROXIES` from the shared passes, the rest on their own."""
    out = shared_scores(model, batch, [n for n in ZERO_COST_NAS if n in SHARED_PROXIES])
    for name in ZERO_COST_NAS:
        if name not in out:
            out[name] = float(get_proxy(name)(model, batch))
    return out


def relative_difference(value: float | Exception, reference: float | Exception) -> float:
    """``|value - reference| / |reference|`` (the absolute difference where the reference is 0;
    0 where both failed, ``inf`` where one did)."""
    if isinstance(value, Exception) or isinstance(reference, Exception):
        return 0.0 if isinstance(value, Exception) and isinstance(reference, Exception) else math.inf
    return abs(value - reference) / abs(reference) if reference else abs(value)


def released_knas_loop(model: torch.nn.Module, batch: Batch) -> None:
    """KNAS's released procedure: one forward+backward per image, 50 images."""
    for k in range(LOOP_SAMPLES):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(batch.inputs[k:k + 1]), batch.targets[k:k + 1]).backward()


def measure_arch(scorer: Scorer, arch: str, proxies: list[str], repeats: int) -> dict[str, float]:
    """Seconds for every measured item on one architecture.

    The items are timed in rounds (every item once per round, ``repeats`` rounds) and the
    minimum per item is kept, so a burst of load from other processes inflates one run of
    every item alike rather than all runs of one item.
    """
    device = scorer.device
    batch = scorer.batch(scorer.batch_size)
    loop_batch = scorer.batch(LOOP_SAMPLES)
    start = time.perf_counter()
    model = scorer.build(arch, batch.num_classes)
    _sync(device)
    build = time.perf_counter() - start
    bare_forward_backward(model, batch)  # warm this network's kernels and allocations
    items: dict[str, Callable[[], Any]] = {"F+B": lambda: bare_forward_backward(model, batch)}
    for name in proxies:
        proxy = get_proxy(name)
        pbatch = scorer.batch(proxy.batch_size or scorer.batch_size)
        items[name] = lambda p=proxy, b=pbatch: p(model, b)
    items["bundle"] = lambda: shared_scores(model, batch, BUNDLE)
    for key, names in BREAKDOWN.items():
        items[key] = lambda n=names: shared_scores(model, batch, n)
    items["naive"] = lambda: naive_bundle(model, scorer)
    values: dict[str, Any] = {}
    items["zero-cost-nas"] = lambda: values.__setitem__("shared", shared_zero_cost_nas(model, batch))
    items["zero-cost-nas naive"] = lambda: values.__setitem__("naive", naive_zero_cost_nas(model, batch))
    items["loop50"] = lambda: released_knas_loop(model, loop_batch)
    items["score"] = lambda: scorer.score(arch, BUNDLE)
    out = dict.fromkeys(items, math.inf)
    for _ in range(repeats):
        for name, fn in items.items():
            out[name] = min(out[name], best_time(fn, device, 1))
            model.zero_grad(set_to_none=True)
    differences = {f"difference:{k}": relative_difference(values["shared"][k], values["naive"][k])
                   if len(values) == 2 else math.nan for k in ZERO_COST_NAS}
    return {"build": build, **out, **differences}


# --- workers ------------------------------------------------------------------------------------

def _worker(settings: dict[str, Any], archs: list[str], threads: int, ready: Any, go: Any,
            results: Any) -> None:
    torch.set_num_threads(threads)
    scorer = Scorer(settings["dataset"], batch_size=settings["batch_size"], seed=settings["seed"],
                    device=settings["device"], model_options=settings["model_options"])
    scorer.score(archs[0], BUNDLE)  # warm-up (data loaded, kernels initialised), not timed
    ready.wait()
    go.wait()
    start = time.perf_counter()
    for arch in archs:
        scorer.score(arch, BUNDLE)
    results.put(time.perf_counter() - start)


def run_workers(settings: dict[str, Any], archs: list[str], workers: int, threads: int) -> float:
    """Wall seconds for ``workers`` spawned processes (``threads`` torch threads each) to score
    ``archs`` (split evenly), from a common start to the last finish."""
    ctx = mp.get_context("spawn")
    ready, go = ctx.Barrier(workers + 1), ctx.Barrier(workers + 1)
    results = ctx.Queue()
    parts = [archs[i::workers] for i in range(workers)]
    procs = [ctx.Process(target=_worker, args=(settings, part, threads, ready, go, results))
             for part in parts]
    for p in procs:
        p.start()
    ready.wait(timeout=600)
    start = time.perf_counter()
    go.wait()
    for _ in procs:
        results.get(timeout=3600)
    wall = time.perf_counter() - start
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a worker exited with status {p.exitcode}")
    return wall


# --- report -------------------------------------------------------------------------------------

def median(values: list[float]) -> float:
    return float(statistics.median(values))


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=30, help="architectures timed (median over them)")
    ap.add_argument("--seed", type=int, default=0, help="architecture sample, batch and init")
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--N", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3,
                    help="timing rounds per architecture (the minimum per item is kept)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads for the timing (default: torch's, usually the cores)")
    ap.add_argument("--proxies", default=",".join(proxy_names()), help="proxies timed on their own")
    ap.add_argument("--scale-archs", type=int, default=12,
                    help="architectures for the one- vs two-worker run (0 skips it)")
    args = ap.parse_args()
    if args.batch_size < 2 or args.archs < 1 or args.repeats < 1:
        ap.error("--batch-size must be >= 2, --archs and --repeats >= 1")

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model_options = {"C": args.C, "N": args.N}
    scorer = Scorer(args.dataset, batch_size=args.batch_size, seed=args.seed, device=args.device,
                    model_options=model_options)
    device = scorer.device
    proxies = [p for p in args.proxies.split(",") if p]
    for p in proxies:
        get_proxy(p)  # unknown names fail here, with the list of valid ones
    archs = scorer.space.sample(args.archs + 1, args.seed)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    machine = (f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
               f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, device {device}"
               + (f" ({gpu})" if gpu else ""))
    print(f"# machine: {machine}")
    print(f"# {args.archs} archs (seed {args.seed}), {args.dataset}, batch {args.batch_size}, "
          f"C={args.C} N={args.N}, min of {args.repeats} runs, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
    sys.stdout.flush()

    measure_arch(scorer, archs[0], proxies, 1)  # warm-up arch, not reported
    rows: list[dict[str, float]] = []
    for arch in tqdm(archs[1:], desc="timing", file=sys.stderr):
        rows.append(measure_arch(scorer, arch, proxies, args.repeats))

    items = ["build", *proxies, "bundle", "naive", "loop50", "score", "zero-cost-nas",
             "zero-cost-nas naive"]
    seconds = {k: median([r[k] for r in rows]) for k in ["F+B", *items]}
    multiple = {k: median([r[k] / r["F+B"] for r in rows]) for k in items}
    separate_sum = median([sum(r[p] for p in BUNDLE) / r["F+B"] for r in rows]) \
        if set(BUNDLE) <= set(proxies) else None
    zc_separate_sum = median([sum(r[p] for p in ZERO_COST_NAS) / r["F+B"] for r in rows]) \
        if set(ZERO_COST_NAS) <= set(proxies) else None
    zc_speedup = median([r["zero-cost-nas naive"] / r["zero-cost-nas"] for r in rows])
    zc_difference = {k: max((d for r in rows if not math.isnan(d := r[f"difference:{k}"])),
                            default=math.nan) for k in ZERO_COST_NAS}
    label = {"build": "build the network (seeded init)",
             "bundle": "**bundle** (shared passes: " + ", ".join(BUNDLE) + ")",
             "naive": "naive reference: deep copy + own passes per bundle proxy",
             "loop50": f"KNAS released loop: {LOOP_SAMPLES} single-image forward+backward",
             "score": "Scorer.score(bundle) end to end (build + bundle)",
             "zero-cost-nas": "**zero-cost-nas's six** on the shared passes (" + ", ".join(ZERO_COST_NAS)
             + "; synflow on its own)",
             "zero-cost-nas naive": "naive reference for the six, as find_measures: deep copy + "
             "released passes per measure"}
    print("\n| measured | median seconds | multiple of F+B (median over archs) |")
    print("|---|---|---|")
    print(f"| F+B: one bare forward+backward, batch {args.batch_size} | {seconds['F+B']:.4f} | 1.00 |")
    for k in items:
        name = label[k] if k in label else f"{k} alone" + (
            f" ({get_proxy(k).batch_size} images)" if get_proxy(k).batch_size else "")
        print(f"| {name} | {seconds[k]:.4f} | {multiple[k]:.2f} |")
    if separate_sum is not None:
        print(f"| sum of the bundle proxies alone (same network) | - | {separate_sum:.2f} |")
    if zc_separate_sum is not None:
        print(f"| sum of the six zero-cost-nas measures alone (same network) | - | {zc_separate_sum:.2f} |")
    print("\nWhere the bundle's cost goes (shared passes of parts of it; multiples of F+B, median):\n")
    print("| part | multiple of F+B | added to the batch pass |")
    print("|---|---|---|")
    part = {k: median([r[k] / r["F+B"] for r in rows]) for k in BREAKDOWN}
    added = {k: median([(r[k] - r["pass:batch"]) / r["F+B"] for r in rows])
             for k in BREAKDOWN if k.startswith("pass:batch+")}
    for k in BREAKDOWN:
        names = ", ".join(BREAKDOWN[k])
        extra = f"{added[k]:+.2f}" if k in added else "-"
        print(f"| {k.removeprefix('pass:')} ({names}) | {part[k]:.2f} | {extra} |")
    print(f"\nBundle vs naive reference: {multiple['naive'] / multiple['bundle']:.2f}x faster; "
          f"vs its proxies one by one: "
          + (f"{separate_sum / multiple['bundle']:.2f}x" if separate_sum else "n/a") + ".")
    singles = {p: multiple[p] for p in SINGLE_GRADIENT if p in multiple}
    print(f"Targets: bundle {multiple['bundle']:.2f}x (target <= {TARGET_BUNDLE}): "
          f"{'met' if multiple['bundle'] <= TARGET_BUNDLE else 'NOT met'}; single gradient proxies "
          + ", ".join(f"{p} {v:.2f}x" for p, v in singles.items())
          + f" (target <= {TARGET_SINGLE}): "
          + ("met" if all(v <= TARGET_SINGLE for v in singles.values()) else "NOT met for "
             + ", ".join(p for p, v in singles.items() if v > TARGET_SINGLE)) + ".")
    zc = multiple["zero-cost-nas"]
    print(f"Zero-cost-nas's six on the shared passes: {zc:.2f}x F+B (target <= {TARGET_ZC}): "
          f"{'met' if zc <= TARGET_ZC else 'NOT met'}; {zc_speedup:.2f}x faster than the naive "
          f"reference ({multiple['zero-cost-nas naive']:.2f}x; median of the per-architecture ratios; "
          f"target >= {TARGET_ZC_SPEEDUP}): {'met' if zc_speedup >= TARGET_ZC_SPEEDUP else 'NOT met'}"
          + (f"; {zc_separate_sum / zc:.2f}x faster than the six alone on one network"
             if zc_separate_sum else "")
          + ". Largest relative difference of their values from the reference's: "
          + ", ".join(f"{k} {v:.1e}" for k, v in zc_difference.items()) + ".")

    scale: dict[str, Any] = {}
    if args.scale_archs > 0:
        settings = {"dataset": args.dataset, "batch_size": args.batch_size, "seed": args.seed,
                    "device": str(device), "model_options": model_options}
        sample = scorer.space.sample(args.scale_archs, args.seed + 1)
        cores = os.cpu_count() or 1
        half = max(1, cores // 2)
        configs = [(1, cores), (1, half), (2, half)] if cores > 1 else [(1, 1), (2, 1)]
        print("\n| workers (processes) | torch threads each | archs | wall seconds | archs/s |")
        print("|---|---|---|---|---|")
        for workers, threads in configs:
            wall = run_workers(settings, sample, workers, threads)
            scale[f"{workers}x{threads}"] = {"workers": workers, "threads": threads, "wall_s": wall,
                                             "archs_per_s": len(sample) / wall}
            print(f"| {workers} | {threads} | {len(sample)} | {wall:.2f} | {len(sample) / wall:.3f} |")
            sys.stdout.flush()
        one = max((v for v in scale.values() if v["workers"] == 1), key=lambda v: v["archs_per_s"])
        two = scale[f"2x{configs[-1][1]}"]
        print(f"\nTwo workers vs the better single worker: {two['archs_per_s'] / one['archs_per_s']:.2f}x "
              "the throughput.")
    per_arch = seconds["score"]
    projection = {"bundle_timing_process_s": per_arch * SPACE_SIZE}
    for s in scale.values():
        key = f"bundle_{s['workers']}_workers_x_{s['threads']}_threads_s"
        projection[key] = SPACE_SIZE / s["archs_per_s"]
    all_proxies = [p for p in proxies if p not in BUNDLE]
    projection["every_proxy_1_process_s"] = (seconds["score"] + sum(seconds[p] for p in all_proxies)) \
        * SPACE_SIZE
    print(f"\nProjected for all {SPACE_SIZE:,} architectures: bundle "
          + ", ".join(f"{k.removeprefix('bundle_').removesuffix('_s').replace('_', ' ')}: {hours(v)}"
                      for k, v in projection.items() if k.startswith("bundle"))
          + f"; every timed proxy ({len(proxies)}) in one process "
          + f"{hours(projection['every_proxy_1_process_s'])}.")
    leaked = sorted(m for m in ("celery", "sqlalchemy", "kombu") if m in sys.modules)
    print(json.dumps({"machine": machine, "device": str(device), "archs": len(rows),
                      "dataset": args.dataset, "batch_size": args.batch_size, "C": args.C, "N": args.N,
                      "repeats": args.repeats, "median_seconds": seconds, "median_multiple": multiple,
                      "bundle_proxies_alone_multiple": separate_sum, "breakdown_multiple": part,
                      "zero_cost_nas": {"multiple": zc, "naive_multiple": multiple["zero-cost-nas naive"],
                                        "speedup_over_naive": zc_speedup,
                                        "alone_multiple": zc_separate_sum,
                                        "largest_relative_difference": zc_difference},
                      "breakdown_added_to_batch_pass": added, "workers": scale,
                      "projection_seconds": projection,
                      "targets_met": {"bundle": multiple["bundle"] <= TARGET_BUNDLE,
                                      "zero_cost_nas": zc <= TARGET_ZC,
                                      "zero_cost_nas_speedup": zc_speedup >= TARGET_ZC_SPEEDUP,
                                      "single_gradient": {p: v <= TARGET_SINGLE for p, v in singles.items()}},
                      "service_modules_imported": leaked}))


if __name__ == "__main__":
    main()
