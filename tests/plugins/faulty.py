"""A plugin for failure tests: proxies that fail the way real ones do (KNAS_PLUGINS=tests.plugins.faulty)."""

import os
import signal
import time

import torch

from knas_core.proxies import register_proxy


@register_proxy("oom_proxy", reference="test plugin: simulates CUDA running out of memory")
def oom_proxy(model, batch):
    """Always raises torch.cuda.OutOfMemoryError, as a too-large batch on a GPU would."""
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def _parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


@register_proxy("slow_proxy", reference="test plugin: the parameter count after KNAS_TEST_SLOW_SECONDS")
def slow_proxy(model, batch):
    """Takes a while per architecture, so a test can kill a worker mid-chunk."""
    time.sleep(float(os.environ.get("KNAS_TEST_SLOW_SECONDS", "1")))
    return float(_parameters(model))


@register_proxy("poison_proxy", reference="test plugin: SIGKILLs its own process on one architecture")
def poison_proxy(model, batch):
    """The parameter count; the process dies (as under the kernel's OOM killer) on the network
    whose parameter count is ``KNAS_TEST_POISON_PARAMS``."""
    params = _parameters(model)
    if str(params) == os.environ.get("KNAS_TEST_POISON_PARAMS"):
        os.kill(os.getpid(), signal.SIGKILL)
    return float(params)
