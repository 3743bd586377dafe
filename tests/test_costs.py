"""FLOPs of NAS-Bench-201 networks priced per edge (knas_core/costs.py) against the ``flops``
proxy's counter run on whole networks."""

from __future__ import annotations

import pytest

from knas_core.costs import count_flops, flops_model, nb201_flops
from knas_core.spaces.base import InvalidArchitectureError

ARCHS = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
         "|none~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_1x1~2|",
         "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")


@pytest.mark.parametrize("dataset", ["cifar10", "imagenet16-120"])
def test_the_per_edge_sum_is_the_counted_total(dataset):
    for arch in ARCHS:
        assert nb201_flops(arch, dataset) == pytest.approx(count_flops(arch, dataset), rel=1e-12)


def test_edge_prices_follow_the_operations_and_the_network_size():
    model = flops_model("cifar10")
    extra = model.extra
    assert extra["none"] == extra["skip_connect"] == 0.0  # neither is counted
    assert extra["nor_conv_3x3"] > extra["nor_conv_1x1"] > extra["avg_pool_3x3"] > 0.0
    # a 3x3 convolution costs 9 times the 1x1 one (same channels and resolution), pooling excepted
    assert extra["nor_conv_3x3"] == pytest.approx(9 * extra["nor_conv_1x1"])
    # ImageNet16-120's 16x16 images: a quarter of the positions in every cell
    assert flops_model("imagenet16-120").extra["nor_conv_3x3"] == pytest.approx(extra["nor_conv_3x3"] / 4)
    small = flops_model("cifar10", C=8, N=1)
    assert nb201_flops(ARCHS[0], "cifar10", C=8, N=1) == pytest.approx(
        count_flops(ARCHS[0], "cifar10", C=8, N=1))
    assert small.extra["nor_conv_3x3"] < extra["nor_conv_3x3"]


def test_an_invalid_cell_is_refused_by_name():
    with pytest.raises(InvalidArchitectureError, match="unknown operation 'conv'"):
        nb201_flops("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "cifar10")
