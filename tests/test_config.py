"""One pydantic model per kind of run (:mod:`knas_core.config`): messages name the field, choices
come from the registries, stored forms stay as they were, the CLI says flags, and validation
never reaches the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from knas_core.config import RunConfig
from knas_core.discovery.evolve import EvolveConfig
from knas_core.discovery.run import DiscoveryConfig
from knas_core.errors import ConfigError, InputError
from knas_core.search.config import ModelOptions, SearchConfig
from knas_core.spaces import SPACES
from knas_core.training import TrainConfig

from .conftest import ARCH

MODELS = (SearchConfig, ModelOptions, TrainConfig, DiscoveryConfig, EvolveConfig)


# --- messages name the field ---------------------------------------------------------------------

@pytest.mark.parametrize("model, raw, field, message", [
    (SearchConfig, {"samples": 0}, "samples", "Input should be greater than or equal to 1"),
    (SearchConfig, {"strategy": "nope"}, "strategy", "unknown search strategy 'nope'; available: knas"),
    (SearchConfig, {"data_source": "ftp"}, "data_source", "unknown data source 'ftp'; available: auto"),
    (SearchConfig, {"device": "tpu"}, "device", "unknown device 'tpu'; available: auto, cpu, cuda"),
    (SearchConfig, {"space": "nb301"}, "space", "unknown search space 'nb301'; available: nb201"),
    (SearchConfig, {"proxy": "nope"}, "proxy", "unknown proxy 'nope'; available: knas"),
    (SearchConfig, {"model": {"N": 21}}, "model.N", "Input should be less than or equal to 20"),
    (ModelOptions, {"C": 0}, "C", "Input should be greater than or equal to 1"),
    (TrainConfig, {"epochs": 0}, "epochs", "must be at least 1, got 0"),
    (TrainConfig, {"num_workers": -1}, "num_workers", "cannot be negative, got -1"),
    (TrainConfig, {"lr": True}, "lr", "expected a number, got True"),
    (TrainConfig, {"device": "tpu"}, "device", "unknown device 'tpu'"),
    (DiscoveryConfig, {"archs": 2}, "archs", "must be at least 3, got 2"),
    (DiscoveryConfig, {"images": 17}, "images", "must lie in 1..16 (the batch size), got 17"),
    (DiscoveryConfig, {"kinds": ["data", "pixels"]}, "kinds", "must be among data, noise, mixed"),
    (DiscoveryConfig, {"metric": "train"}, "metric", "unknown metric 'train'; available: test"),
    (DiscoveryConfig, {"heldout": True}, "heldout", "expected a whole number, got True"),
    (EvolveConfig, {"population": 1}, "population", "must be at least 2, got 1"),
    (EvolveConfig, {"mutation": 1.5}, "mutation", "must lie in 0..1, got 1.5"),
])
def test_each_model_refuses_a_bad_value_naming_the_field(model, raw, field, message):
    with pytest.raises(ConfigError) as info:
        model.parse(raw)
    [(where, text)] = info.value.problems
    assert where == field and text.startswith(message)
    assert str(info.value) == f"{field}: {text}" and "--" not in str(info.value)
    with pytest.raises(ConfigError) as again:  # the constructor says the same
        model(**raw)
    assert again.value.problems == info.value.problems


@pytest.mark.parametrize("model", MODELS)
def test_every_model_refuses_unknown_fields_and_is_an_input_error(model):
    with pytest.raises(ConfigError) as info:
        model.parse({"colour": "red"})
    assert info.value.problems == [("colour", "Extra inputs are not permitted")]
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)
    with pytest.raises(ConfigError, match="must be a mapping of fields, got list"):
        model.parse([1, 2])
    assert issubclass(model, RunConfig) and model.parse({}) == model()


def test_several_problems_are_one_line_each_with_its_field():
    with pytest.raises(ConfigError) as info:
        DiscoveryConfig.parse({"archs": 1, "population": 0, "device": "tpu"})
    assert [field for field, _ in info.value.problems] == ["archs", "population", "device"]
    assert str(info.value) == "; ".join(f"{field}: {message}" for field, message in info.value.problems)
    assert "\n" not in str(info.value)


# --- choices come from the registries --------------------------------------------------------------

@pytest.fixture()
def toy_strategy() -> Iterator[str]:
    from knas_core.search import STRATEGIES, register_strategy
    from knas_core.search.base import Strategy

    @register_strategy("toy_strategy")
    @dataclass
    class ToyStrategy(Strategy):
        samples: int = 1
        topk: int = 1
        name: str = "toy_strategy"

        def search(self, ctx):
            arch = ctx.space.sample(1, ctx.seed)[0]
            return arch, None, [arch]

    yield "toy_strategy"
    STRATEGIES.remove("toy_strategy")


@pytest.fixture()
def toy_space() -> Iterator[str]:
    from knas_core.spaces import SPACES, InvalidArchitectureError, SearchSpace, register_space

    @register_space("toy_space")
    class ToySpace(SearchSpace):
        name = "toy_space"
        ARCHS = ("a", "b", "c")

        @property
        def size(self) -> int:
            return len(self.ARCHS)

        def validate(self, arch: str) -> str:
            if arch.strip() not in self.ARCHS:
                raise InvalidArchitectureError(f"{arch!r} is not one of {', '.join(self.ARCHS)}")
            return arch.strip()

        def arch_at(self, index: int) -> str:
            return self.ARCHS[index]

        def index_of(self, arch: str) -> int:
            return self.ARCHS.index(self.validate(arch))

        def enumerate(self):
            return iter(self.ARCHS)

        def sample(self, n: int, seed: int) -> list[str]:
            return list(self.ARCHS[:n])

        def build_model(self, arch, num_classes, **options):
            raise NotImplementedError

    yield "toy_space"
    SPACES.remove("toy_space")


def test_a_strategy_registered_later_is_accepted_without_editing_the_model(toy_strategy):
    cfg = SearchConfig.parse({"strategy": toy_strategy, "samples": 4, "topk": 2})
    assert cfg.strategy == toy_strategy and not cfg.staged
    assert cfg.strategy_kwargs() == {"samples": 4, "topk": 2, "C": 16, "N": 5}


def test_an_unregistered_strategy_is_refused_with_the_registered_ones(toy_strategy):
    with pytest.raises(ConfigError) as info:
        SearchConfig.parse({"strategy": "toy"})
    assert info.value.problems == [
        ("strategy", "unknown search strategy 'toy'; available: knas, nasi, evolution, random, toy_strategy")]


def test_a_data_source_added_later_is_accepted(monkeypatch):
    from knas_core import data

    monkeypatch.setattr(data, "SOURCES", (*data.SOURCES, "toy_source"))
    assert SearchConfig.parse({"data_source": "toy_source"}).data_source == "toy_source"
    assert DiscoveryConfig(data_source="toy_source").data_source == "toy_source"


def test_a_registered_space_is_accepted_by_the_space_field(toy_space, monkeypatch):
    cfg = SearchConfig.parse({"space": toy_space, "archs": ["a", " c"], "topk": 1, "eval": "train"})
    assert cfg.space == toy_space and cfg.sample_count == 2
    with pytest.raises(ConfigError) as info:  # the architectures are the space's own
        SearchConfig.parse({"space": toy_space, "archs": ["a", ARCH], "topk": 1, "eval": "train"})
    assert info.value.problems[0][0] == "archs" and "item 1: " in info.value.problems[0][1]
    with pytest.raises(ConfigError, match="item 1: the same architecture as item 0"):
        SearchConfig.parse({"space": toy_space, "archs": ["b", " b"], "topk": 1, "eval": "train"})
    with pytest.raises(ConfigError, match="^space: discovery ranks programs against a benchmark table"):
        DiscoveryConfig(space=toy_space)  # no table of its accuracies
    monkeypatch.setattr(SPACES.get(toy_space), "has_benchmark", True)  # as if it had one
    discovery = DiscoveryConfig(space=toy_space)
    assert discovery.space == toy_space
    assert discovery.setup("cpu").key().startswith(f"{toy_space}-cifar10-")  # its own tensor cache
    assert DiscoveryConfig().setup("cpu").key().startswith("cifar10-")  # nb201's keeps its name


def test_a_space_without_a_benchmark_table_is_searched_by_training(toy_space):
    """Look-up, a sample larger than the space and the NAS-Bench-201-only strategies are refused,
    each under its own field."""
    with pytest.raises(ConfigError) as info:
        SearchConfig.parse({"space": toy_space, "samples": 2, "topk": 1})
    assert info.value.problems == [
        ("eval", f"look-up needs a benchmark table; space {toy_space!r} has none: use eval=train")]
    with pytest.raises(ConfigError) as info:
        SearchConfig.parse({"space": toy_space, "eval": "train", "topk": 1})  # 300 samples of 3
    assert info.value.problems == [
        ("samples", f"at most 3 (the architectures of space {toy_space!r}), got 300")]
    assert SearchConfig.parse({"space": toy_space, "eval": "train", "samples": 3, "topk": 1}).samples == 3
    with pytest.raises(ConfigError, match="^strategy: nasi optimises a NAS-Bench-201 supernet"):
        SearchConfig.parse({"space": toy_space, "eval": "train", "strategy": "nasi", "samples": 1, "topk": 1})
    with pytest.raises(ConfigError, match=f"^strategy: evolution .* space {toy_space!r} defines no mutation"):
        SearchConfig.parse({"space": toy_space, "eval": "train", "strategy": "evolution", "samples": 2,
                            "topk": 1})
    for strategy in ("knas", "random"):
        assert SearchConfig.parse({"space": toy_space, "eval": "train", "strategy": strategy, "samples": 2,
                                   "topk": 1}).strategy == strategy
    assert SearchConfig.parse({"strategy": "nasi"}).eval == "lookup"  # NAS-Bench-201 as before


def test_the_dataset_is_canonical():
    assert SearchConfig.parse({"dataset": "ImageNet16_120"}).dataset == "imagenet16-120"
    assert DiscoveryConfig(dataset="CIFAR100").dataset == "cifar100"


# --- stored forms are unchanged ----------------------------------------------------------------------

def test_train_identity_is_unchanged():
    """The identity is stored with every checkpoint: a resumed run compares it."""
    assert TrainConfig().identity() == {
        "epochs": 12, "batch_size": 256, "lr": 0.1, "momentum": 0.9, "nesterov": True,
        "weight_decay": 5e-4, "seed": 0, "train_subset": None, "test_subset": None, "augment": True}
    assert list(TrainConfig(device="cpu", num_workers=2).identity()) == [
        "epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "seed", "train_subset",
        "test_subset", "augment"]
    assert TrainConfig(epochs=3).replace(seed=2) == TrainConfig(epochs=3, seed=2)
    with pytest.raises(ConfigError, match="epochs: must be at least 1"):
        TrainConfig().replace(epochs=0)


def test_search_config_trains_as_it_did():
    cfg = SearchConfig.parse({"epochs": 3, "seed": 4, "device": "cpu", "train_subset": 64})
    assert cfg.train_config() == TrainConfig(epochs=3, seed=4, device="cpu", train_subset=64)


def test_discovery_config_round_trips_through_its_stored_form():
    cfg = DiscoveryConfig(archs=12, heldout=8, generations=2, population=4, seed=3, dataset="cifar100",
                          C=4, N=1, images=None, kinds=("data", "noise"), device="cpu",
                          cache_dir="/tmp/cache", memory_gib=0.5, extra={"note": "x"})
    stored = json.loads(json.dumps(cfg.to_dict()))
    assert stored["kinds"] == ["data", "noise"] and stored["images"] is None
    assert DiscoveryConfig.from_dict(stored) == cfg
    assert DiscoveryConfig().to_dict() == {
        "archs": 200, "heldout": 500, "generations": 10, "population": 20, "seed": 0, "space": "nb201",
        "dataset": "cifar10", "metric": "test", "C": 16, "N": 5, "batch_size": 16, "images": 2,
        "kinds": ["data", "noise", "mixed"], "half": True, "device": "auto", "data_source": "auto",
        "data_dir": None, "cache_dir": None, "memory_gib": 4.0, "extra": {}}


def test_a_run_stored_before_spaces_were_configurable_still_loads():
    old = {"archs": 20, "heldout": 30, "generations": 2, "population": 20, "seed": 0, "dataset": "cifar10",
           "metric": "test", "C": 16, "N": 5, "batch_size": 16, "images": 2,
           "kinds": ["data", "noise", "mixed"], "half": True, "device": "auto", "data_source": "auto",
           "data_dir": None, "cache_dir": None, "memory_gib": 4.0, "extra": {}, "from_a_later_version": 1}
    cfg = DiscoveryConfig.from_dict(old)
    assert cfg.space == "nb201" and cfg.archs == 20 and cfg.kinds == ("data", "noise", "mixed")
    with pytest.raises(ConfigError, match="archs: must be at least 3"):
        DiscoveryConfig.from_dict({**old, "archs": 1})


# --- the CLI says flags ---------------------------------------------------------------------------

def test_the_cli_translates_fields_to_its_flags():
    from knas_cli import evolve, search
    from knas_cli.fields import flag_error, parse_config
    from knas_cli.main import build_parser

    args = build_parser().parse_args(["search", "--samples", "3", "--topk", "5", "--C", "0", "--steps", "0",
                                      "--train-subset", "60000"])
    with pytest.raises(ConfigError) as info:
        parse_config(SearchConfig, search.config_from_args(args), search.FLAGS)
    assert dict(info.value.problems) == {
        "--steps": "must be >= 1 and <= 10000, got 0",
        "--topk": "topk (5) cannot exceed the number of architectures (3)",
        "--train-subset": "at most 50,000 (the cifar10 training set), got 60,000",
        "--C": "Input should be greater than or equal to 1"}
    with pytest.raises(ConfigError) as info:
        DiscoveryConfig(archs=2, memory_gib=-1)
    translated = flag_error(info.value, evolve.FLAGS)
    assert str(translated) == "--archs: must be at least 3, got 2; --memory-gib: cannot be negative, got -1.0"


def test_knas_evolve_prints_the_flag(tmp_path, monkeypatch, capsys):
    from knas_cli.main import main

    monkeypatch.setenv("KNAS_DATABASE_URL", f"sqlite:///{tmp_path / 'absent.db'}")
    assert main(["evolve", "--archs", "2", "--images", "0"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["knas: error: --archs: must be at least 3, got 2"]
    assert not (tmp_path / "absent.db").exists()


def test_knas_search_without_duplicate_limit_checks():
    """The model holds the limits: the command no longer checks --samples/--topk itself."""
    import inspect

    from knas_cli import search

    source = inspect.getsource(search.run)
    assert "args.samples" not in source and "args.topk" not in source


# --- validation never reaches the database ----------------------------------------------------------

@pytest.fixture()
def no_database(monkeypatch):
    """An unreachable database, and any attempt to open it an error."""
    import db.discovery
    import db.session

    monkeypatch.setenv("KNAS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none")

    def refuse(*args, **kwargs):
        raise AssertionError("validation reached the database")

    monkeypatch.setattr(db.session, "get_engine", refuse)
    monkeypatch.setattr(db.session, "session_scope", refuse)
    monkeypatch.setattr(db.discovery, "register_discovered_proxies", refuse)


def test_validation_performs_no_database_access(no_database):
    from tasks.schema import validate_config

    assert validate_config({"proxy": "synflow"}).proxy == "synflow"
    ensemble = validate_config({"proxies": ["synflow", "naswot"], "topk": 2})
    assert ensemble.proxy_list() == ["synflow", "naswot"]
    with pytest.raises(ConfigError, match="proxy: unknown proxy 'promoted_later'"):
        validate_config({"proxy": "promoted_later"})  # the registry only: no look-up in the store
    from app.views import newsearch

    configs, errors = newsearch.validate({**newsearch.defaults(), "proxies": ["synflow"]})
    assert configs and not errors


def test_callers_register_promoted_proxies_before_validating(monkeypatch):
    """``load_config`` (the API, the workers) registers the store's promoted programs first, and
    only when the config names a proxy this process lacks."""
    import db.discovery
    from knas_core.proxies import PROXIES, register_proxy
    from tasks.schema import load_config

    calls = []

    def register(url=None):
        calls.append(url)
        if "promoted_later" not in PROXIES:
            register_proxy("promoted_later")(lambda *a, **k: 0.0)
        return ["promoted_later"]

    monkeypatch.setattr(db.discovery, "register_discovered_proxies", register)
    try:
        assert load_config({"proxy": "synflow"}).proxy == "synflow" and calls == []
        assert load_config({"proxy": "promoted_later"}).proxy == "promoted_later" and len(calls) == 1
    finally:
        if "promoted_later" in PROXIES:
            PROXIES.remove("promoted_later")


# --- the forms put each message by its widget -----------------------------------------------------------

def test_the_new_search_form_maps_fields_to_its_widgets():
    from app.views import newsearch

    _, errors = newsearch.validate({**newsearch.defaults(), "strategy": "nasi", "steps": 0, "N": 30,
                                    "seeds": "2147483648"})
    assert errors == {"steps": "must be >= 1 and <= 10000, got 0",
                      "seeds": "must be less than 2147483648, got '2147483648'",
                      "N": "must be at most 20, got 30"}


def test_the_proxy_lab_form_maps_fields_to_its_widgets():
    from app.views import proxy_lab as lab

    with pytest.raises(ConfigError) as info:
        DiscoveryConfig.from_dict({"archs": 2, "images": 40, "memory_gib": -1})
    errors = lab.form_errors(info.value)
    assert errors == {"archs": "must be at least 3, got 2",
                      "images": "must lie in 1..16 (the batch size), got 40",
                      lab.FORM: "memory_gib: cannot be negative, got -1.0"}
    assert set(errors) - {lab.FORM} <= set(lab.FORM_LABELS)
