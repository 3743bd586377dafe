"""Genetic programming over the proxy language with DEAP (EZNAS, Akhauri et al., NeurIPS 2022,
Sec. 3.2): tournament selection, one-point crossover, uniform subtree mutation, a height limit
and an elite of one; fitness is Kendall tau-b (``scipy.stats.kendalltau``) between program
scores and ground-truth accuracy on the training sample. Each generation also reports the tau
of the best program so far on a disjoint held-out sample, which never steers the search.

Reproducible: the same seed, data and cache give the same programs (DEAP draws from Python's
``random``, which is re-seeded here; the state is saved with every generation for resuming).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import ConfigDict, field_validator
from scipy import stats as sps

from knas_core.config import RunConfig, at_least, within
from knas_core.discovery.language import Program, evaluate_many, parse, primitive_set
from knas_core.discovery.tensors import KINDS, Block, check_kinds
from knas_core.errors import Cancelled  # noqa: F401 - raised by a progress callback between generations
from knas_core.optional import missing_extra

try:
    from deap import base, creator, gp, tools
except ImportError as exc:
    raise missing_extra(exc, "discovery",
                        "proxy discovery (knas evolve, the Proxy lab, promoted proxies)") from None

#: Programs whose scores are finite on fewer than this share of the training sample get -1.
MIN_FINITE = 0.9
MAX_HEIGHT = 8

ArchTensors = Sequence[Block] | str  # an architecture's blocks, or the error of its gather


class EvolveConfig(RunConfig):
    """The genetic programming loop: ``population`` programs evolved for ``generations``
    (tournaments of ``tournament``, crossover and mutation probabilities per pair/individual,
    initial trees of height ``init_height`` (lowest, highest)) over the input ``kinds``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ClassVar[str] = "evolution"

    population: Annotated[int, at_least(2)] = 20
    generations: Annotated[int, at_least(0)] = 10
    seed: Annotated[int, at_least(0)] = 0
    tournament: Annotated[int, at_least(1)] = 3
    crossover: Annotated[float, within(0, 1)] = 0.5
    mutation: Annotated[float, within(0, 1)] = 0.3
    init_height: tuple[int, int] = (1, 4)
    kinds: tuple[str, ...] = KINDS

    @field_validator("init_height")
    @classmethod
    def _heights(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 0 <= low <= high <= MAX_HEIGHT:
            raise ValueError(f"need 0 <= lowest <= highest <= {MAX_HEIGHT}, got {value}")
        return value

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_kinds(value)


@dataclass
class Generation:
    """Progress of one generation (0 = the initial population)."""

    generation: int
    best_fitness: float
    mean_fitness: float
    heldout_kendall: float | None
    best_formula: str
    nonfinite_blocks: int
    seconds: float
    population: list[str] = field(default_factory=list, repr=False)
    rng_state: Any = field(default=None, repr=False)

    def to_dict(self, with_state: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"generation": self.generation, "best_fitness": self.best_fitness,
             "mean_fitness": self.mean_fitness, "heldout_kendall": self.heldout_kendall,
             "best_formula": self.best_formula, "nonfinite_blocks": self.nonfinite_blocks,
             "seconds": self.seconds}
        if with_state:
            d.update(population=self.population, rng_state=self.rng_state)
        return d


@dataclass
class EvolveResult:
    formula: str
    train_kendall: float
    heldout_kendall: float | None
    generations: list[Generation]


def kendall(scores: Sequence[float], truth: Sequence[float]) -> tuple[float | None, float]:
    """Kendall tau-b over the pairs with a finite score, and the finite share."""
    s, t = np.asarray(scores, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    keep = np.isfinite(s) & np.isfinite(t)
    share = float(keep.mean()) if len(s) else 0.0
    if keep.sum() < 2 or np.ptp(s[keep]) == 0:
        return None, share
    tau = float(sps.kendalltau(s[keep], t[keep]).statistic)
    return (tau if math.isfinite(tau) else None), share


def _types() -> tuple[type, type]:
    if not hasattr(creator, "KnasProxyFitness"):
        creator.create("KnasProxyFitness", base.Fitness, weights=(1.0,))
    if not hasattr(creator, "KnasProxyProgram"):
        creator.create("KnasProxyProgram", gp.PrimitiveTree, fitness=creator.KnasProxyFitness)
    return creator.KnasProxyFitness, creator.KnasProxyProgram


def _json_state(state: Any) -> Any:
    return [_json_state(x) for x in state] if isinstance(state, tuple | list) else state


def _tuple_state(state: Any) -> Any:
    return tuple(_tuple_state(x) for x in state) if isinstance(state, list) else state


def evolve(train: Sequence[ArchTensors], train_truth: Sequence[float],
           heldout: Callable[[Program], tuple[float | None, float]] | None,
           config: EvolveConfig | None = None,
           on_generation: Callable[[Generation], None] | None = None,
           resume: Generation | None = None) -> EvolveResult:
    """Evolve a program maximising Kendall tau on ``train``.

    Args:
        train: the training architectures' blocks: a list in memory, or any sequence that loads
            an architecture on indexing (e.g. :class:`~knas_core.discovery.tensors.CachedArchs`
            streaming from disk); it is read once per generation.
        train_truth: their accuracies, same order.
        heldout: ``program -> (tau, finite share)`` on the held-out sample (may stream from disk).
        config: the GP settings (default: ``EvolveConfig()``).
        on_generation: called after each generation (may raise :class:`Cancelled`).
        resume: the last stored generation (with ``population`` and ``rng_state``): continue
            from it instead of starting afresh.
    """
    config = config if config is not None else EvolveConfig()
    if len(train) != len(train_truth):
        raise ValueError(f"{len(train)} training architectures but {len(train_truth)} accuracies")
    if len(train) < 3:
        raise ValueError("need at least 3 training architectures")
    _, Individual = _types()
    pset = primitive_set(config.kinds)
    toolbox = base.Toolbox()
    low, high = config.init_height
    toolbox.register("expr", gp.genHalfAndHalf, pset=pset, min_=low, max_=high)
    toolbox.register("individual", tools.initIterate, Individual, toolbox.expr)
    toolbox.register("select", tools.selTournament, tournsize=config.tournament)
    toolbox.register("mate", gp.cxOnePoint)
    toolbox.register("expr_mut", gp.genFull, min_=0, max_=2)
    toolbox.register("mutate", gp.mutUniform, expr=toolbox.expr_mut, pset=pset)
    limit = gp.staticLimit(key=operator_height, max_value=MAX_HEIGHT)
    toolbox.decorate("mate", limit)
    toolbox.decorate("mutate", limit)

    memo: dict[str, tuple[float, int]] = {}

    def evaluate(population: list) -> int:
        """Fitness of every individual; new programs are evaluated together, architecture by
        architecture, so a streamed training sample is read once per generation."""
        fresh: dict[str, Program] = {}
        for ind in population:
            key = str(ind)
            if key not in memo and key not in fresh:
                fresh[key] = Program(ind, config.kinds)
        if fresh:
            for key, ev in zip(fresh, evaluate_many(list(fresh.values()), train)):
                tau, share = kendall(ev.scores, train_truth)
                memo[key] = ((tau if tau is not None and share >= MIN_FINITE else -1.0), ev.nonfinite_blocks)
        nonfinite = 0
        for ind in population:
            value, bad = memo[str(ind)]
            ind.fitness.values = (value,)
            nonfinite += bad
        hof.update(population)
        return nonfinite

    best_heldout: dict[str, float | None] = {}

    def heldout_of(best: gp.PrimitiveTree) -> float | None:
        key = str(best)
        if key not in best_heldout:
            best_heldout[key] = heldout(Program(best, config.kinds))[0] if heldout is not None else None
        return best_heldout[key]

    history: list[Generation] = []
    hof = tools.HallOfFame(1)
    if resume is not None and resume.population:
        # The stored state is taken after evaluating generation ``resume.generation`` and before
        # varying it, so re-evaluating that population (no random draws) and continuing gives
        # the same run as one never interrupted.
        random.setstate(_tuple_state(resume.rng_state))
        pop = [Individual(parse(s, config.kinds)) for s in resume.population]
        evaluate(pop)
        start = resume.generation + 1
    else:
        random.seed(config.seed)
        pop = [toolbox.individual() for _ in range(config.population)]
        start = 0
    for gen in range(start, config.generations + 1):
        t0 = time.perf_counter()
        if gen > 0:
            elite = [toolbox.clone(hof[0])]
            offspring = [toolbox.clone(i) for i in toolbox.select(pop, len(pop) - 1)]
            for i in range(1, len(offspring), 2):
                if random.random() < config.crossover:
                    offspring[i - 1], offspring[i] = toolbox.mate(offspring[i - 1], offspring[i])
            for i in range(len(offspring)):
                if random.random() < config.mutation:
                    (offspring[i],) = toolbox.mutate(offspring[i])
            pop = elite + offspring
        nonfinite = evaluate(pop)
        values = [ind.fitness.values[0] for ind in pop]
        record = Generation(gen, float(hof[0].fitness.values[0]), float(np.mean(values)), heldout_of(hof[0]),
                            str(hof[0]), nonfinite, time.perf_counter() - t0,
                            [str(i) for i in pop], _json_state(random.getstate()))
        history.append(record)
        if on_generation is not None:
            on_generation(record)
    return EvolveResult(str(hof[0]), float(hof[0].fitness.values[0]), heldout_of(hof[0]), history)


def operator_height(ind: gp.PrimitiveTree) -> int:
    return ind.height
