"""Validation of the pipeline's config: its JSON schema, then what the schema cannot say (datasets it
names, subsets that fit them, and every run it plans), with messages that name the key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from memnet.schema import (
    SCHEMA_FILE,
    ConfigError,
    _key,
    coerce_command_line,
    load_schema,
    schema_error,
)

__all__ = ["ConfigError", "validate"]


def validate(config: dict, schema_path: str | Path = SCHEMA_FILE) -> dict:
    """Raise ConfigError naming the first bad key (the most specific), else return ``config``.

    Strings from Snakemake's `--config` are first turned into the numbers the schema expects.
    """
    coerce_command_line(config, load_schema(schema_path))
    if message := schema_error(config, load_schema(schema_path)):
        raise ConfigError(message)

    from memnet import datasets
    from memnet.pipeline.plan import plan

    known = datasets.declarations(config)  # raises ConfigError naming a bad declaration's key
    for key, name in _dataset_references(config):
        if name not in known:
            raise ConfigError(
                f"config key '{key}': unknown dataset {name!r}; known: {', '.join(sorted(known))}. "
                "Declare a new one under the config key dataset_declarations "
                "(README, 'Adding a dataset')"
            )
    for name, subset in config.get("data", {}).get("subset", {}).items():
        for part in ("n_train", "n_test"):
            available = getattr(known[name], part)
            if subset.get(part, 0) > available:
                raise ConfigError(
                    f"config key 'data.subset.{name}.{part}': {subset[part]} is more than the "
                    f"{available} images {name} has"
                )
    _check_incremental_tasks(config, known)
    _check_families(config)
    try:
        runs = plan(config)  # cross-checks: every baseline an experiment names must be defined
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    _check_runs_fit_data(config, runs, known)
    return config


def _check_runs_fit_data(config: dict, runs, known: dict) -> None:
    """Every planned run's parameters, valid alone, also fit its dataset's images (a patch larger
    than the image, a colour step on one channel, patch and stride lists of different lengths):
    one message naming the key, not a failure in every job."""
    from memnet.models.registry import make_model

    seen = set()
    for run in runs:
        key = (run.dataset, run.model, json.dumps(run.params, sort_keys=True, default=str))
        if key in seen:
            continue
        seen.add(key)
        shape = known[run.dataset].image_shape
        try:
            model = make_model(run.model, run.params, 0, 1, config)
            model.check_input_shape(shape)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"config key '{_variant_key(config, run)}' on {run.dataset} (images of "
                f"{' x '.join(map(str, shape))}, C x H x W): {exc}. Fix the value, or limit the "
                "variant to other datasets with only_datasets"
            ) from None


def _variant_key(config: dict, run) -> str:
    """Where the config declares the parameters of ``run``'s variant."""
    experiment = config.get("experiments", {}).get(run.experiment, {})
    if run.variant in experiment and isinstance(experiment[run.variant], dict):
        return f"experiments.{run.experiment}.{run.variant}"  # an ablation (local_ablations)
    if run.x is not None and run.experiment not in ("main", "samples"):
        return f"experiments.{run.experiment}"  # a sweep of the reference (local_banks)
    if run.model == "memnet":
        ablations = config.get("experiments", {}).get("ablations", {})
        declared = run.variant in ablations and run.variant != "paper"
        return f"experiments.ablations.{run.variant}" if declared else "memnet"
    for section in (config.get("baselines", {}), config):
        if run.variant in (section.get(run.model) or {}):
            prefix = "baselines." if section is not config else ""
            return f"{prefix}{run.model}.{run.variant}"
    return f"experiments.{run.experiment}.models.{run.model}"


def _check_incremental_tasks(config: dict, known: dict) -> None:
    """The incremental experiment's tasks cover every class of each dataset it runs on exactly
    once; the class count comes from the dataset's declaration."""
    from memnet.pipeline.incremental import check_tasks

    incremental = config.get("experiments", {}).get("incremental")
    if not incremental:
        return
    only = incremental.get("only_datasets")
    for name in config.get("datasets", []):
        if only is None or name in only:
            n_classes = len(known[name].classes)
            try:
                check_tasks(incremental["tasks"], n_classes)
            except ValueError as exc:
                raise ConfigError(
                    f"config key 'experiments.incremental.tasks' on {name} ({n_classes} classes): "
                    f"{str(exc).removeprefix('tasks: ')}"
                ) from None


def _check_families(config: dict) -> None:
    """The families the config names exist, and take the parameters it gives them.

    The schema checks the shipped baselines' parameters; a family of ``model_families`` is checked
    by importing its class and building it with each variant's parameters (so a misspelt class path
    or keyword fails here, naming its key, not in every job).
    """
    from memnet.models.registry import BASELINE, CONFIG_KEY, families

    try:
        known = families(config)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for name in config.get("baselines", {}):
        if name not in known or known[name].variants != BASELINE:
            takes = [f for f, fam in known.items() if fam.variants == BASELINE]
            raise ConfigError(
                f"config key 'baselines.{name}': '{name}' is not a baseline or a family of "
                f"{CONFIG_KEY}; known: {', '.join(takes)}. Declare your own under {CONFIG_KEY} "
                "(docs/extending.md)"
            )
    for name in config.get(CONFIG_KEY) or {}:
        fam = known[name]
        try:
            cls = fam.load_class()
        except ValueError as exc:
            raise ConfigError(f"config key '{CONFIG_KEY}.{name}.class': {exc}") from None
        if not (callable(getattr(cls, "fit", None)) and callable(getattr(cls, "predict", None))):
            raise ConfigError(
                f"config key '{CONFIG_KEY}.{name}.class': {fam.cls} has no fit and predict "
                "methods; name an estimator class (scikit-learn's interface)"
            )
        from memnet.models.foreign import ForeignEstimator

        for variant, params in config.get("baselines", {}).get(name, {}).items():
            params = {k: v for k, v in params.items() if k != "only_datasets"}
            try:
                ForeignEstimator(cls, params, name=name)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"config key 'baselines.{name}.{variant}': {exc}") from None


def _dataset_references(config: dict) -> Iterator[tuple[str, str]]:
    """(key, name) of every dataset name the config uses: datasets, data.subset, only_datasets."""
    for i, name in enumerate(config.get("datasets", [])):
        yield f"datasets[{i}]", name
    for name in config.get("data", {}).get("subset", {}):
        yield f"data.subset.{name}", name

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "only_datasets" and isinstance(value, list):
                    for i, name in enumerate(value):
                        yield f"{_key((*path, key))}[{i}]", name
                else:
                    yield from walk(value, (*path, key))

    for section in ("memnet", "baselines", "experiments"):
        yield from walk(config.get(section, {}), (section,))
