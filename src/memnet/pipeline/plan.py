"""Experiments as data: the config expands into runs, and one run turns into one metrics file.

`plan(config)` lists every run the config declares (seeds aside); the Snakemake rules expand it into jobs.
A Run travels whole: the `run` rule hands ``Run.to_json()`` to `memnet run --run`, which executes it
(memnet.pipeline.execute). Adding a seed, sweep point, ablation, baseline or model family is a config
edit: nothing here names one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from memnet import datasets
from memnet.models.registry import (
    CONFIG_KEY,
    FAMILIES,
    HIERARCHY,
    LOCAL,
    MEMNET,
    OWN_KEY,
    SINGLE,
    families,
)
from memnet.pipeline import paths
from memnet.pipeline.incremental import check_tasks

# Keys of a config entry that select where it applies rather than being model parameters.
SELECTORS = ("only_datasets",)


@dataclass(frozen=True)
class Run:
    """One model setting on one dataset; the pipeline runs it once per seed."""

    dataset: str
    experiment: str
    model: str
    variant: str
    name: str  # unique within (dataset, experiment, model): the variant, plus the sweep value
    params: dict[str, Any] = field(hash=False)
    x: float | None = None  # the swept value (n_neurons or n_train), if any
    n_train: int | None = None  # a stratified training subset of this size, if any
    tasks: tuple[tuple[int, ...], ...] | None = None  # class-incremental: the classes of each task
    # a family of the config's `model_families` (not shipped): its entry (class, label), so that
    # the job that runs it needs nothing but the run
    family: dict | None = field(default=None, hash=False)

    def metrics_path(self, seed: int | str, results_dir: str) -> str:
        """Where this run's metrics file for ``seed`` lies, under a config's results directory."""
        fields = dict(dataset=self.dataset, experiment=self.experiment, model=self.model)
        return paths.under(results_dir, paths.RUN, **fields, name=self.name, seed=seed)

    @property
    def needs_tuning(self) -> bool:
        """Whether the run takes its threshold from the `tune` step (a tuned family, no tau)."""
        fam = FAMILIES.get(self.model)
        return fam is not None and fam.tuned and self.params.get("tau") is None

    def to_json(self) -> str:
        """The run as one JSON object (`memnet run --run`): the job needs nothing else but its
        data, seed, threads and output."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return json.dumps(fields, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Run:
        """The run that ``to_json`` wrote; a malformed one is one ValueError naming the field."""
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--run: not valid JSON ({exc.msg})") from None
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(fields, dict) or not {"dataset", "model", "variant"} <= set(fields):
            raise ValueError("--run: expected a JSON object with dataset, experiment, model, ...")
        unknown = sorted(set(fields) - names)
        if unknown:
            raise ValueError(f"--run: unknown field(s) {', '.join(unknown)}")
        if fields.get("tasks") is not None:
            fields["tasks"] = tuple(tuple(t) for t in fields["tasks"])
        fields.setdefault("name", fields["variant"])
        fields.setdefault("experiment", "main")
        fields.setdefault("params", {})
        return cls(**fields)


def _applies(entry: dict, dataset: str) -> bool:
    only = entry.get("only_datasets")
    return only is None or dataset in only


def _params(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k not in SELECTORS}


def _model_variants(config: dict, models: dict, dataset: str, key: str = "experiments"):
    """Yield (model, variant, params) for a `models:` block of an experiment (config key ``key``).

    Where a family's variants live is its registry entry's ``variants`` (memnet.models.registry).
    """
    known = families(config)
    for model, variants in models.items():
        fam = known.get(model)
        if fam is None:
            raise ValueError(
                f"config key '{key}.{model}': unknown model '{model}'; known: "
                f"{', '.join(known)}. Declare your own under the config key model_families "
                "(docs/extending.md)"
            )
        for variant in variants:
            if fam.variants == SINGLE:
                entry = config[model]
            elif fam.variants == OWN_KEY:
                entry = own_entry(config, model, variant, f"{key}.{model}")
            else:
                try:
                    entry = config["baselines"][model][variant]
                except KeyError:
                    raise ValueError(
                        f"config key '{key}.{model}': uses {model}/{variant}, but "
                        f"baselines.{model} defines no '{variant}'; add it under baselines.{model}"
                    ) from None
            if _applies(entry, dataset):
                yield model, variant, _params(entry)


def train_size(config: dict, dataset: str) -> int:
    """The number of training images a run of this dataset sees at most."""
    full = datasets.get_spec(dataset, config).n_train
    cap = config.get("data", {}).get("subset", {}).get(dataset, {}).get("n_train")
    return min(full, cap) if cap else full


def sweep_sizes(config: dict, dataset: str) -> list[tuple[int, int]]:
    """(size run, size asked) for each point of the `samples` sweep on ``dataset``.

    A size above the training set (or its configured subset) means all of it: it is clipped to the
    training set's size, and `clipped_sweep_points` says so.
    """
    available = train_size(config, dataset)
    asked = config.get("experiments", {}).get("samples", {}).get("n_train", [])
    return [(min(n, available), n) for n in asked]


def clipped_sweep_points(config: dict) -> list[str]:
    """A warning for each `samples` sweep point larger than a dataset's training set."""
    return [
        f"experiments.samples.n_train: {asked} is more than the {run} training images of "
        f"{dataset}; it runs on all {run}"
        for dataset in config["datasets"]
        if "samples" in config.get("experiments", {})
        for run, asked in sweep_sizes(config, dataset)
        if run != asked
    ]


# The variant of the config's `local:` entry that `local_banks` sweeps and `local_ablations` vary.
LOCAL_REFERENCE = FAMILIES[LOCAL].reference
# Experiments that change one parameter of a family's reference variant (its `<family>:` entry) at a
# time: experiment -> family
OWN_KEY_ABLATIONS = {"local_ablations": LOCAL, "hierarchy_ablations": HIERARCHY}


def own_entry(config: dict, model: str, variant: str, key: str) -> dict:
    """The entry of ``variant`` under the config key of ``model`` (a family whose variants have a
    key of their own, as `local:`); ``key`` is the config key that asks for it, named in the error
    when the entry is missing."""
    try:
        return config[model][variant]
    except KeyError:
        raise ValueError(
            f"config key '{key}': uses the {model} model's variant '{variant}', but the config "
            f"key '{model}' defines no '{variant}'; add it under {model}"
        ) from None


def local_entry(config: dict, variant: str, key: str) -> dict:
    """The `local:` entry of ``variant`` (LocalMemoryNetwork parameters)."""
    return own_entry(config, LOCAL, variant, key)


def paper_params(config: dict) -> dict:
    """The Memory Network's `paper` parameters of ``config`` (its `memnet` entry)."""
    return _params(config["memnet"])


def plan(config: dict) -> list[Run]:
    """Every run that `config` declares, in a stable order."""
    runs: list[Run] = []
    experiments = config.get("experiments", {})
    paper = paper_params(config)
    for dataset in config["datasets"]:
        main = experiments.get("main")
        if main:
            for model, variant, params in _model_variants(
                config, main["models"], dataset, "experiments.main.models"
            ):
                runs.append(Run(dataset, "main", model, variant, variant, params))

        neurons = experiments.get("neurons")
        if neurons:
            for n in neurons["n_neurons"]:
                params = {**paper, "n_neurons": n}
                runs.append(Run(dataset, "neurons", MEMNET, f"n{n}", f"n{n}", params, x=n))

        samples = experiments.get("samples")
        if samples:
            sizes = sorted({n for n, _ in sweep_sizes(config, dataset)})
            for model, variant, params in _model_variants(
                config, samples["models"], dataset, "experiments.samples.models"
            ):
                for n in sizes:
                    name = f"{variant}-t{n}"
                    runs.append(
                        Run(dataset, "samples", model, variant, name, params, x=n, n_train=n)
                    )

        for name, overrides in experiments.get("ablations", {}).items():
            if _applies(overrides, dataset):
                params = {**paper, **_params(overrides)}
                runs.append(Run(dataset, "ablations", MEMNET, name, name, params))

        banks = experiments.get("local_banks")
        if banks:
            entry = local_entry(config, LOCAL_REFERENCE, "experiments.local_banks")
            for n in banks["n_per_bank"] if _applies(entry, dataset) else ():
                params = {**_params(entry), "n_per_bank": n}
                runs.append(Run(dataset, "local_banks", LOCAL, f"b{n}", f"b{n}", params, x=n))

        for experiment, model in OWN_KEY_ABLATIONS.items():
            ablations = experiments.get(experiment, {})
            if ablations:
                reference = FAMILIES[model].reference
                entry = own_entry(config, model, reference, f"experiments.{experiment}")
                for name, overrides in ablations.items():
                    if _applies(entry, dataset) and _applies(overrides, dataset):
                        params = {**_params(entry), **_params(overrides)}
                        runs.append(Run(dataset, experiment, model, name, name, params))

        incremental = experiments.get("incremental")
        if incremental and _applies(incremental, dataset):
            runs += _incremental_runs(config, incremental, dataset)
    own = config.get(CONFIG_KEY) or {}
    return [dataclasses.replace(r, family=own[r.model]) if r.model in own else r for r in runs]


# How the Memory Network learns a stream: with its length T known (the budget spread evenly over it,
# as in one pass over a dataset), or not known (a birth schedule that needs no T: see MemoryNetwork).
HORIZONS = {"known": {}, "open": {"birth_schedule": "open"}}


def _incremental_runs(config: dict, incremental: dict, dataset: str) -> list[Run]:
    n_classes = len(datasets.get_spec(dataset, config).classes)
    try:
        tasks = check_tasks(incremental["tasks"], n_classes)
    except ValueError as exc:
        raise ValueError(f"config key 'experiments.incremental.tasks' ({dataset}): {exc}") from None
    runs = []
    for model, variant, params in _model_variants(
        config, incremental["models"], dataset, "experiments.incremental.models"
    ):
        if model != MEMNET:
            runs.append(Run(dataset, "incremental", model, variant, variant, params, tasks=tasks))
            continue
        for horizon in incremental["horizons"]:
            name = f"{variant}-{horizon}"
            params = {**params, **HORIZONS[horizon]}
            runs.append(Run(dataset, "incremental", model, name, name, params, tasks=tasks))
    return runs


def params_json(params: dict) -> str:
    return json.dumps(params, sort_keys=True)
