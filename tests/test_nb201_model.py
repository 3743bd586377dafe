import numpy as np
import pytest
import torch
from torch import nn

from knas_core.models.nb201 import NB201Network, ReLUConvBN, Zero, count_parameters
from knas_core.spaces.nb201 import OPS, parse_arch

DATASET_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16_120": 120}
KNOWN_TABLE_MISMATCHES = 150


def _edge_params(op: str) -> int:
    """Parameters one edge adds to one cell in each stage (widths 16, 32, 64), measured."""
    base = count_parameters(NB201Network(["none"] * 6, num_classes=10, C=16, N=1))
    one = count_parameters(NB201Network([op] + ["none"] * 5, num_classes=10, C=16, N=1))
    return one - base


def test_parameter_count_matches_the_benchmark_for_every_architecture(truth):
    # The count is additive over edges: fixed skeleton + 5 cells per stage x per-edge params.
    # Measure both parts on real networks, then check all 15,625 table entries.
    per_edge = {op: 5 * _edge_params(op) for op in OPS}
    frame = truth.frame
    ops = np.array([parse_arch(a) for a in frame["arch"]])
    edges = np.vectorize(per_edge.get)(ops).sum(axis=1)
    one_conv = np.array([per_edge["nor_conv_1x1"], per_edge["nor_conv_3x3"]])
    for ds, classes in DATASET_CLASSES.items():
        skeleton = count_parameters(NB201Network(["none"] * 6, num_classes=classes))
        diff = (skeleton + edges) - frame[f"params_mb_{ds}"].to_numpy() * 1e6
        exact = np.abs(diff) <= 50  # the table is rounded to 1e-4 M = 100 parameters
        # 150 rows of the republished table (the same indices for every dataset) are off by
        # exactly one convolution edge; see docs/RESULTS.md. Everything else matches.
        assert (~exact).sum() == KNOWN_TABLE_MISMATCHES, ds
        off_by_one_conv = np.abs(np.abs(diff[~exact])[:, None] - one_conv[None, :]).min(axis=1) <= 100
        assert off_by_one_conv.all(), ds


@pytest.mark.parametrize("index", [0, 1, 2, 4321, 15624])
def test_parameter_count_of_real_networks(truth, index):
    arch = truth.frame.loc[index, "arch"]
    for ds, classes in DATASET_CLASSES.items():
        model = NB201Network(parse_arch(arch), num_classes=classes)
        assert round(count_parameters(model) / 1e6, 4) == pytest.approx(
            truth.frame.loc[index, f"params_mb_{ds}"], abs=1e-4)


def test_macro_structure_and_operations():
    model = NB201Network(["nor_conv_3x3", "avg_pool_3x3", "nor_conv_1x1", "skip_connect",
                          "none", "nor_conv_3x3"], num_classes=10)
    assert len(model.cells) == 17  # 5 + 1 + 5 + 1 + 5
    stem_conv, stem_bn = model.stem
    assert stem_conv.out_channels == 16 and stem_conv.bias is None and stem_conv.kernel_size == (3, 3)
    assert isinstance(stem_bn, nn.BatchNorm2d)
    assert model.classifier.in_features == 64
    cell = model.cells[0]
    conv = cell.edges[0]
    assert isinstance(conv, ReLUConvBN)
    assert isinstance(conv[0], nn.ReLU) and conv[1].bias is None and conv[2].affine
    pool = cell.edges[1]
    assert pool.kernel_size == 3 and pool.stride == 1 and pool.padding == 1
    assert pool.count_include_pad is False
    assert isinstance(cell.edges[3], nn.Identity) and isinstance(cell.edges[4], Zero)
    assert isinstance(model.lastact[0], nn.BatchNorm2d) and isinstance(model.lastact[1], nn.ReLU)


@pytest.mark.parametrize("side, classes", [(32, 10), (16, 120)])
def test_forward_shapes_and_cheap_variants(side, classes):
    model = NB201Network(["nor_conv_3x3"] * 6, num_classes=classes, C=8, N=2)
    assert len(model.cells) == 2 * 3 + 2
    assert model.classifier.in_features == 32
    out = model(torch.randn(3, 3, side, side))
    assert out.shape == (3, classes)


def test_all_none_cell_cuts_the_signal():
    model = NB201Network(["none"] * 6, num_classes=10, C=4, N=1).eval()
    out_a = model(torch.randn(2, 3, 32, 32))
    out_b = model(torch.randn(2, 3, 32, 32))
    # Only the residual shortcut reaches the head; after the last zero cell the output is constant.
    assert torch.allclose(out_a, out_b)


def test_invalid_width_is_rejected():
    with pytest.raises(ValueError, match="C >= 1"):
        NB201Network(["none"] * 6, C=0)
