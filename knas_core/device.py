"""Device selection: ``auto`` uses CUDA when present, else the CPU."""

from __future__ import annotations

import os

import torch

from knas_core.errors import ConfigError, InputError

DEVICES = ("auto", "cpu", "cuda")


class DeviceUnavailableError(RuntimeError, InputError):
    """The requested device does not exist on this machine."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> ``cuda`` if available else ``cpu``; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailableError("device cuda requested but no CUDA GPU is available; "
                                     "use device auto or cpu")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")


def thread_budget(concurrency: int, cores: int | None = None) -> int:
    """Torch threads per worker process so that ``concurrency`` processes share ``cores`` CPUs.

    ``cores // concurrency``, at least 1. Measured in docs/RESULTS.md (Scoring throughput): a
    2-thread process on busy cores ran 14x slower than a 1-thread one (OpenMP threads waiting for
    each other), so processes must not ask for more threads than their share.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    cores = cores if cores is not None else (len(os.sched_getaffinity(0))
                                             if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return max(1, cores // concurrency)
