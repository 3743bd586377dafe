"""The New-search form: its defaults, a stored config turned back into form values (clone as
new), and validation with one message per form field (from
:class:`knas_core.search.config.SearchConfig`, whose field names :data:`CONFIG_TO_FORM` maps to
the form's)."""

from __future__ import annotations

import re
from typing import Any

from knas_core.datasets import images_used
from knas_core.errors import ConfigError
from knas_core.search.config import SearchConfig
from knas_core.search.ensemble import DEFAULT_ENSEMBLE

#: Form fields, in page order. ``proxies`` (one: a single proxy; several: an ensemble),
#: ``weights`` (``{proxy: weight}`` of the ensemble's members; the page shows one box per member),
#: ``seeds`` (comma-separated: one search per seed), ``C``/``N`` (network), the rest as in the schema.
FIELDS = ("name", "space", "dataset", "data_source", "data_dir", "strategy", "population", "tournament",
          "steps", "proxies", "weights", "samples", "topk", "eval", "epochs", "train_subset", "seeds",
          "batch_size", "device", "C", "N", "chunk_size")
#: Each form field's widget label (the page draws them; a refused submit names them).
LABELS = {"name": "Name", "space": "Search space", "dataset": "Dataset", "data_source": "Data source",
          "data_dir": "Data directory (optional)", "strategy": "Strategy", "population": "Population",
          "tournament": "Tournament size", "steps": "Supernet steps (T)",
          "proxies": "Proxies (several: a log-rank ensemble)", "weights": "Ensemble weights",
          "samples": "Sample size",
          "topk": "Top-k evaluated", "eval": "Evaluation", "epochs": "Epochs",
          "train_subset": "Training subset (images, 0 = all)",
          "seeds": "Seeds (one search per seed, e.g. 0,1,2)",
          "batch_size": "Batch size", "device": "Device", "C": "Width C", "N": "Cells N",
          "chunk_size": "Chunk size"}


#: The form's sample size: with :data:`FORM_PROXIES` a first search scores in well under a
#: minute on 2 CPU cores (KNAS and the schema use 300; README, Dashboard, gives the measured time).
FORM_SAMPLES = 100
#: The form's proxies and their weights: the log-rank ensemble of synflow, eznas and params
#: (:data:`~knas_core.search.ensemble.DEFAULT_ENSEMBLE`), the best measured configuration of the
#: KNAS procedure (docs/RESULTS.md, Search strategies: the 99th percentile on all three datasets,
#: against 66-78th for the ``knas`` score alone); the schema keeps ``knas``.
FORM_PROXIES = tuple(DEFAULT_ENSEMBLE)
FORM_WEIGHTS = dict(DEFAULT_ENSEMBLE)


def defaults() -> dict[str, Any]:
    """Form values: the schema's defaults (KNAS strategy, top-10, look-up, seed 0, C=16, N=5)
    except a sample size of :data:`FORM_SAMPLES` and the proxies :data:`FORM_PROXIES`."""
    cfg = SearchConfig()
    return {"name": "", "space": cfg.space, "dataset": cfg.dataset, "data_source": cfg.data_source,
            "data_dir": "", "strategy": cfg.strategy, "population": 20, "tournament": 5, "steps": 100,
            "proxies": list(FORM_PROXIES), "weights": dict(FORM_WEIGHTS), "samples": FORM_SAMPLES,
            "topk": cfg.topk, "eval": cfg.eval,
            "epochs": cfg.epochs, "train_subset": 0, "seeds": str(cfg.seed), "batch_size": cfg.batch_size,
            "device": cfg.device, "C": cfg.model.C, "N": cfg.model.N, "chunk_size": cfg.chunk_size}


def values_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """Form values that reproduce a stored config (clone as new); unknown keys are ignored."""
    out = defaults()
    cfg = SearchConfig.parse(config)
    opts = cfg.strategy_options
    out.update({"name": f"{cfg.name} (clone)" if cfg.name else "", "space": cfg.space, "dataset": cfg.dataset,
                "data_source": cfg.data_source, "data_dir": cfg.data_dir or "", "strategy": cfg.strategy,
                "proxies": cfg.proxy_list(), "weights": cfg.proxy_weights(),
                "samples": len(cfg.archs) if cfg.archs else cfg.samples,
                "topk": cfg.topk, "eval": cfg.eval, "epochs": cfg.epochs,
                "train_subset": cfg.train_subset or 0,
                "seeds": str(cfg.seed), "batch_size": cfg.batch_size, "device": cfg.device, "C": cfg.model.C,
                "N": cfg.model.N, "chunk_size": cfg.chunk_size})
    for key in ("population", "tournament", "steps"):
        if opts.get(key) is not None:
            out[key] = int(opts[key])
    if cfg.archs:
        out["archs"] = list(cfg.archs)
    out["lease_seconds"] = cfg.lease_seconds  # not on the form; kept so a clone is exact
    return out


def images_note(dataset: str, data_source: str, data_dir: str | None) -> tuple[bool, str]:
    """``(found, text)``: which images a search with these form values would score, as found on
    this machine (the data look-up order of :mod:`knas_core.paths`; a worker elsewhere uses its
    own), or why there are none. Opening the images can take a second (a large npz is hashed).

    Plain text (it holds a typed or stored data directory): the page renders it escaped."""
    if data_dir:  # a path on the server: say only whether it is usable, never why not
        from tasks.preflight import check_data_dir

        try:
            check_data_dir(SearchConfig.parse({"dataset": dataset, "data_source": data_source,
                                               "data_dir": data_dir}))
        except ConfigError as exc:
            return False, f"No images for this search: {exc}"
    info = images_used(dataset, data_source, data_dir or None)  # as config_from_values passes it
    if "error" in info:
        return False, f"No images for this search: {info['error']}"
    return True, f"Images: {info['description']} — identity {info['identity']}"


def parse_seeds(text: str) -> list[int]:
    """``"0"`` or ``"0, 1, 2"`` -> ``[0, 1, 2]``; raises ``ValueError`` with a one-line message."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise ValueError("give at least one seed, e.g. 0 or 0,1,2")
    seeds = []
    for p in parts:
        if not p.isdigit():
            raise ValueError(f"{p!r} is not a non-negative whole number; write seeds as 0 or 0,1,2")
        seeds.append(int(p))
    if len(set(seeds)) != len(seeds):
        raise ValueError("a seed is listed twice")
    return seeds


def config_from_values(values: dict[str, Any], seed: int) -> dict[str, Any]:
    """The submit-time config of one seed (strategy options only for their strategy; ensemble
    weights only for an ensemble, and only those other than 1)."""
    proxies = list(values.get("proxies") or [])
    given = values.get("weights") or {}
    weights = {p: given[p] for p in proxies if p in given and given[p] != 1.0} if len(proxies) > 1 else {}
    options: dict[str, Any] = {}
    if values["strategy"] == "evolution":
        options = {"population": values["population"], "tournament": values["tournament"]}
    elif values["strategy"] == "nasi":
        options = {"steps": values["steps"]}
    config: dict[str, Any] = {
        "name": values.get("name", ""), "space": values["space"], "dataset": values["dataset"],
        "data_source": values["data_source"], "data_dir": values.get("data_dir") or None,
        "strategy": values["strategy"], "proxy": proxies[0] if proxies else "",
        "proxies": proxies if len(proxies) > 1 else None, "weights": weights or None,
        "strategy_options": options,
        "samples": values["samples"], "topk": values["topk"], "eval": values["eval"],
        "epochs": values["epochs"], "train_subset": values.get("train_subset") or None,
        "batch_size": values["batch_size"], "seed": seed, "device": values["device"],
        "model": {"C": values["C"], "N": values["N"]}, "chunk_size": values["chunk_size"]}
    if values.get("archs"):
        config["archs"] = list(values["archs"])
    if values.get("lease_seconds"):
        config["lease_seconds"] = values["lease_seconds"]
    return config


#: Config field -> the form field whose widget shows its message (the rest keep their names).
CONFIG_TO_FORM = {"proxy": "proxies", "model.C": "C", "model.N": "N", "seed": "seeds",
                  "strategy_options": "strategy", "strategy_options.population": "population",
                  "strategy_options.tournament": "tournament", "strategy_options.steps": "steps",
                  "archs": "samples"}


def form_field(field: str, message: str) -> tuple[str, str]:
    """``(form field, message)`` for a config problem: the widget it is shown under (the
    Name field for a problem no widget owns) and the message without the sub-field it leads
    with when that sub-field has a widget of its own (``steps: must be ...``)."""
    head, sep, rest = message.partition(": ")
    if sep and f"{field}.{head}" in CONFIG_TO_FORM:
        return CONFIG_TO_FORM[f"{field}.{head}"], rest
    name = CONFIG_TO_FORM.get(field, field)
    return (name if name in FIELDS else "name"), message


_BOUND = re.compile(r"Input should be (greater|less) than (or equal to )?(\S+)")
_WORDS = {("greater", True): "must be at least", ("less", True): "must be at most",
          ("greater", False): "must be more than", ("less", False): "must be less than"}


def plain_message(message: str, value: Any) -> str:
    """A schema message in the form's words, with the value the field holds: pydantic's
    ``Input should be greater than or equal to 1`` becomes ``must be at least 1, got 0`` (the
    wording of :func:`knas_core.config.at_least`); other messages are kept."""
    bound = _BOUND.fullmatch(message)
    if bound:
        if bound.groups() == ("greater", "or equal to ", "0"):
            return f"cannot be negative, got {value!r}"
        return f"{_WORDS[bound[1], bool(bound[2])]} {bound[3]}, got {value!r}"
    if message.startswith("Input should be a valid integer"):
        return "give a whole number" if value is None else f"must be a whole number, got {value!r}"
    return message


def refused(errors: dict[str, str]) -> str:
    """The line shown at the Submit button when the form is refused: which fields to change
    (each has its own message under its widget), or the one message no widget owns."""
    fields = [LABELS[f] for f in FIELDS if f in errors]
    if not fields:
        return "; ".join(errors.values())
    return f"Not submitted: change the field{'s' * (len(fields) > 1)} marked above: {'; '.join(fields)}."


def validate(values: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Configs to submit (one per seed) and ``{form field: message}`` for every problem, each
    naming the value the form holds (what the user sees in that field).

    Submit only when the message dict is empty."""
    errors: dict[str, str] = {}
    subset = values.get("train_subset")
    if values.get("eval") == "train" and isinstance(subset, int) and subset < 0:
        errors["train_subset"] = f"cannot be negative (0: all images), got {subset}"
        values = {**values, "train_subset": 0}
    if not values.get("proxies") and values.get("strategy") != "random":
        errors["proxies"] = "choose at least one proxy (several form a log-rank ensemble)"
    try:
        seeds = parse_seeds(values.get("seeds", ""))
    except ValueError as exc:
        errors["seeds"] = str(exc)
        seeds = [0]
    configs = []
    for seed in seeds:
        config = config_from_values({**values, "proxies": values.get("proxies") or ["knas"]}, seed)
        try:
            configs.append(SearchConfig.parse(config).model_dump(mode="json", exclude_none=True))
        except ConfigError as exc:
            for field, message in exc.problems:
                name, text = form_field(field, message)
                errors.setdefault(name, plain_message(text, values.get(name)))
    return (configs if not errors else []), errors
