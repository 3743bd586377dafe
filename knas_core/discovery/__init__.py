"""Proxy discovery by genetic programming (EZNAS: Akhauri et al., NeurIPS 2022).

* :mod:`~knas_core.discovery.tensors`: per-block tensors, one pass per input kind, and their
  cache (torch only: runs where DEAP is not installed);
* :mod:`~knas_core.discovery.language`: the DEAP primitive set and program evaluation;
* :mod:`~knas_core.discovery.evolve`: the GP loop with Kendall-tau fitness;
* :mod:`~knas_core.discovery.formula`: readable formula and tree;
* :mod:`~knas_core.discovery.proxy`: a program string as a registered proxy;
* :mod:`~knas_core.discovery.run`: a whole run (sample, gather, evolve).

Nothing is imported here, so ``tensors`` stays importable without DEAP.
"""
