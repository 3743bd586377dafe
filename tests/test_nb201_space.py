import pytest

from knas_core.spaces import InvalidArchitectureError, get_space
from knas_core.spaces.nb201 import OPS, all_archs_lexicographic, format_arch, parse_arch

from .conftest import ARCH


def test_parse_and_format_round_trip_for_every_cell():
    archs = list(all_archs_lexicographic())
    assert len(archs) == len(set(archs)) == 15625
    for arch in archs:
        assert format_arch(parse_arch(arch)) == arch


def test_parse_reads_edges_in_string_order():
    assert parse_arch(ARCH) == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3",
                                "skip_connect", "nor_conv_3x3", "skip_connect")


@pytest.mark.parametrize("bad, fragment", [
    ("|nor_conv_3x3~0|+|none~0|none~1|", "3 node groups"),
    ("|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must have 2"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation 'conv'"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must come from node 0"),
    ("|none|+|none~0|none~1|+|none~0|none~1|none~2|", "must look like 'op~0'"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "start and end with '|'"),
])
def test_malformed_strings_name_the_problem(bad, fragment):
    with pytest.raises(InvalidArchitectureError, match=fragment.replace("|", r"\|")):
        parse_arch(bad)


def test_index_order_matches_the_table(space, truth):
    frame = truth.frame
    for index in (0, 1, 777, 15624):
        assert space.arch_at(index) == frame.loc[index, "arch"]
        assert space.index_of(frame.loc[index, "arch"]) == index
    assert list(space.enumerate()) == truth.archs
    assert set(space.enumerate()) == set(all_archs_lexicographic())


def test_index_out_of_range_is_rejected(space):
    with pytest.raises(InvalidArchitectureError, match="out of range"):
        space.arch_at(15625)


def test_sampling_is_seeded_distinct_and_prefix_stable(space):
    a = space.sample(50, seed=3)
    assert a == space.sample(50, seed=3)
    assert a != space.sample(50, seed=4)
    assert len(set(a)) == 50
    assert space.sample(10, seed=3) == a[:10]
    with pytest.raises(ValueError):
        space.sample(0, seed=0)


def test_space_loads_its_index_order_from_the_data_lookup():
    lazy = get_space("nb201")
    assert lazy.size == len(OPS) ** 6
    assert lazy.index_of(lazy.arch_at(1234)) == 1234
