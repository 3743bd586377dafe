"""Proxy discovery core: tensors, language, GP loop, formula proxies (small networks)."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats as sps

from knas_core.discovery.evolve import Cancelled, EvolveConfig, evolve, kendall
from knas_core.discovery.formula import readable, tree_layout
from knas_core.discovery.language import EZNAS_PROGRAM, Program, ProgramError, used_kinds
from knas_core.discovery.proxy import register_formula_proxy
from knas_core.discovery.tensors import CachedArchs, GatherSetup, TensorCache, gather, gather_archs
from knas_core.proxies import PROXIES, get_proxy
from knas_core.scoring import Scorer

from .conftest import SMALL


@pytest.fixture(scope="module")
def archs(truth):
    from knas_core.spaces import get_space

    space = get_space("nb201", archs_in_index_order=truth.archs)
    return [(space.index_of(a), a) for a in space.sample(12, seed=3)]


@pytest.fixture(scope="module")
def cache(tmp_path_factory, archs):
    cache = TensorCache(tmp_path_factory.mktemp("tensors"),
                        GatherSetup(C=4, N=1, images=2, device_type="cpu"))
    gather_archs(archs, cache, device="cpu")
    return cache


def test_published_program_equals_eznas_proxy(space, cifar10, archs):
    """The EZNAS program through the language gives the eznas proxy's values (full batch, f32)."""
    batch = cifar10.batch(16, seed=0)
    program = Program(EZNAS_PROGRAM)
    for _, arch in archs[:3]:
        torch.manual_seed(0)
        expected = get_proxy("eznas")(space.build_model(arch, 10, **SMALL).train(), batch)
        torch.manual_seed(0)
        blocks = gather(space.build_model(arch, 10, **SMALL).train(), batch)
        assert program(blocks) == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert program.nonfinite_blocks == 0


@pytest.fixture()
def formula_name():
    """A proxy name registered only for the test (the registry is process-global)."""
    yield "test_eznas_formula"
    if "test_eznas_formula" in PROXIES:
        PROXIES.remove("test_eznas_formula")


def test_formula_proxy_through_scorer_matches_eznas(archs, formula_name):
    """A program registered from its string scores like the built-in proxy in the Scorer."""
    register_formula_proxy("test_eznas_formula", EZNAS_PROGRAM)
    register_formula_proxy("test_eznas_formula", EZNAS_PROGRAM)  # same formula again: a no-op
    with pytest.raises(ValueError, match="already registered"):
        register_formula_proxy("test_eznas_formula", "mean(data_A)")
    scorer = Scorer("cifar10", seed=1, device="cpu", model_options=SMALL)
    arch = archs[0][1]
    got = scorer.score(arch, ["eznas", "test_eznas_formula"]).results
    assert got["test_eznas_formula"].ok
    assert got["test_eznas_formula"].value == pytest.approx(got["eznas"].value, rel=1e-12)
    assert not get_proxy("test_eznas_formula").needs_labels


def test_tensor_cache_roundtrip_and_resume(cache, archs, space, cifar10):
    """Scaled float16 keeps every sign and ~3 significant digits; a second gather reuses files."""
    index, arch = archs[1]
    torch.manual_seed(0)
    direct = gather(space.build_model(arch, 10, **SMALL).train(), cifar10.batch(16, seed=0), images=2)
    cached = cache.get(index)
    assert len(cached) == len(direct)
    for a, b in zip(direct, cached):
        assert set(a) == set(b) and len(a) == 24
        for key in a:
            assert torch.equal(torch.sign(a[key]), torch.sign(b[key])) or key.endswith("_W_grad")
            scale = a[key].abs().max()
            assert torch.allclose(a[key], b[key], atol=float(scale) * 1e-3)
    assert cached[0]["data_A"].shape[0] == 2  # only the first 2 images are kept
    again = gather_archs(archs, cache, device="cpu")
    assert again == {"gathered": 0, "cached": len(archs), "failed": 0}


def test_language_is_numerically_safe():
    block = {"data_A": torch.zeros(2, 3, 4, 4), "data_W": torch.ones(3, 3, 1, 1)}
    assert math.isfinite(Program("mean(log(data_A))").block_value(block))  # log(0) is protected
    zeros = {**block, "data_A": torch.zeros(3, 3, 1, 1)}
    assert math.isfinite(Program("mean(div(data_W, data_A))").block_value(zeros))
    # shapes that cannot be paired give NaN, which the architecture mean drops and counts
    prog = Program("cosine(data_A, data_W)")
    assert math.isnan(prog.block_value(block))
    assert math.isnan(prog([block, block])) and prog.nonfinite_blocks == 2
    ev = Program("frob(data_A)").evaluate([[block], "RuntimeError: out of memory"])
    assert ev.scores[0] == 0.0 and math.isnan(ev.scores[1]) and ev.failed_archs == 1
    with pytest.raises(ProgramError, match="not a proxy program"):
        Program("frob(no_such_leaf)")
    assert used_kinds("add(mean(noise_A), frob(mixed_W))") == ("noise", "mixed")


def test_readable_formula_and_tree():
    assert readable(EZNAS_PROGRAM) == "||sigmoid(logdet(sign(dL/dA[data])))||_F"
    assert readable("add(data_W, mul(noise_Y, data_X_grad))") == "(W[data] + (Y[noise] * dL/dX[data]))"
    layout = tree_layout("add(data_W, mul(noise_Y, data_X_grad))")
    assert layout.labels[0] == "add" and len(layout.labels) == 5
    assert sorted(layout.edges) == [(0, 1), (0, 2), (2, 3), (2, 4)]
    assert layout.x[0] == pytest.approx((layout.x[1] + layout.x[2]) / 2)


def _data(cache, archs, truth):
    acc = truth.accuracy("cifar10")
    train = [cache.get(i, keep=True) for i, _ in archs[:8]]
    return train, [float(acc.loc[i]) for i, _ in archs[:8]], [float(acc.loc[i]) for i, _ in archs[8:]]


def test_evolve_fitness_is_kendall_seeded_and_resumable(cache, archs, truth):
    train, y, y_held = _data(cache, archs, truth)
    held = [cache.get(i) for i, _ in archs[8:]]

    def heldout(program):
        return kendall(program.evaluate(held).scores, y_held)

    cfg = EvolveConfig(population=6, generations=3, seed=5)
    full = evolve(train, y, heldout, cfg)
    # fitness is Kendall tau-b of the program's scores on the training sample
    scores = Program(full.formula).evaluate(train).scores
    assert full.train_kendall == pytest.approx(sps.kendalltau(scores, y).statistic)
    assert full.heldout_kendall == pytest.approx(heldout(Program(full.formula))[0])
    best = [g.best_fitness for g in full.generations]
    assert best == sorted(best) and len(full.generations) == 4  # elitism: never gets worse
    assert [g.best_formula for g in evolve(train, y, heldout, cfg).generations] == \
        [g.best_formula for g in full.generations]  # same seed, same run
    # streaming the training sample from disk (too big for memory) gives the same run
    streamed = evolve(CachedArchs(cache, [i for i, _ in archs[:8]], keep=False), y, heldout, cfg)
    assert [g.to_dict() | {"seconds": 0} for g in streamed.generations] == \
        [g.to_dict() | {"seconds": 0} for g in full.generations]

    seen = []

    def stop_after_first(gen):
        seen.append(gen)
        if gen.generation == 1:
            raise Cancelled

    with pytest.raises(Cancelled):
        evolve(train, y, heldout, cfg, stop_after_first)
    resumed = evolve(train, y, heldout, cfg, resume=seen[-1])
    assert resumed.formula == full.formula
    assert [g.to_dict() | {"seconds": 0} for g in resumed.generations] == \
        [g.to_dict() | {"seconds": 0} for g in full.generations[2:]]


def test_evolve_rejects_bad_input(cache, archs, truth):
    train, y, _ = _data(cache, archs, truth)
    with pytest.raises(ValueError, match="accuracies"):
        evolve(train, y[:-1], None)
    with pytest.raises(ValueError, match="population"):
        evolve(train, y, None, EvolveConfig(population=1))


def test_gathering_needs_no_deap_celery_or_sqlalchemy():
    """The expensive step runs on a machine with torch, numpy, scipy and pandas only."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; sys.modules.update(deap=None, celery=None, sqlalchemy=None); "
            "import knas_core.discovery.run, knas_core.discovery.tensors; "
            "assert 'deap' not in [m.split('.')[0] for m in sys.modules if sys.modules[m] is not None]")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-2000:]
