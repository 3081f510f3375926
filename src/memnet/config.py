"""Validation of the pipeline's config against its JSON schema, with messages that name the key."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import yaml

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The config is invalid; the message names the key and says what is expected."""


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


@functools.cache
def load_schema(schema_path: str | Path = SCHEMA_FILE) -> dict:
    return yaml.safe_load(Path(schema_path).read_text())


def schema_error(
    instance, schema: dict, prefix: tuple = (), where: str = "config key"
) -> str | None:
    """A message naming the first bad key (the most specific) of ``instance``, or None if it is valid.

    ``prefix`` is the path of ``instance`` in its document, ``where`` names the document's keys.
    """
    validator = jsonschema.Draft202012Validator(schema)
    # The deepest error first; at one depth, an unexpected key (often a misspelt required one).
    errors = sorted(
        validator.iter_errors(instance),
        key=lambda e: (-len(e.absolute_path), e.validator != "additionalProperties", e.message),
    )
    if not errors:
        return None
    err = errors[0]
    key = _key((*prefix, *err.absolute_path))
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"{where} '{key}': {err.message}{hint}"
    if err.validator == "not" and err.validator_value == {}:  # a key forbidden here
        why = f" ({err.schema['description']})" if "description" in err.schema else ""
        return f"{where} '{key}': not allowed here{why}"
    if err.validator in ("pattern", "oneOf") and "description" in err.schema:
        return (
            f"{where} '{key}': {err.instance!r} is not allowed here; "
            f"expected {err.schema['description']}"
        )
    return f"{where} '{key}': {err.message}"


_NOT_A_SCALAR = object()


def _scalar(text: str, expected) -> object:
    """``text`` as the number, boolean or null it spells, if that is one of the JSON-schema
    ``expected`` types ("1e-3" is a number, as in YAML 1.2 and Python; "010" is ten)."""
    expected = {expected} if isinstance(expected, str) else set(expected)
    word = text.strip()
    if expected & {"integer", "number"}:
        try:
            return int(word)
        except ValueError:
            pass
    if "number" in expected:
        try:
            value = float(word)
        except ValueError:
            pass
        else:
            if math.isfinite(value):
                return value
    if "boolean" in expected and word.lower() in ("true", "false"):
        return word.lower() == "true"
    if "null" in expected and word.lower() in ("null", "~", "none", ""):
        return None
    return _NOT_A_SCALAR


def coerce_command_line(config: dict, schema: dict) -> dict:
    """Turn strings into the numbers, booleans and nulls the schema expects there, in place.

    Snakemake reads every scalar of `--config key=value` as a string (`seeds=[0,1]` gives
    ``['0', '1']``). Only a string the schema rejects for its type is converted, so strings the
    schema expects (class names such as "0") are left alone; a number quoted in a config file is
    read as the number too.
    """
    validator = jsonschema.Draft202012Validator(schema)
    while True:
        for error in validator.iter_errors(config):
            found = _string_in_place_of_scalar(error)
            if found is not None:
                path, value = found
                parent = config
                for part in path[:-1]:
                    parent = parent[part]
                parent[path[-1]] = value
                break
        else:
            return config


def _string_in_place_of_scalar(error) -> tuple[list, object] | None:
    """(path, value) of a string that ``error`` (or one of its oneOf/anyOf branches) rejects for its type."""
    if error.validator == "type" and isinstance(error.instance, str) and error.absolute_path:
        value = _scalar(error.instance, error.validator_value)
        if value is not _NOT_A_SCALAR:
            return list(error.absolute_path), value
    for branch in error.context:
        if (found := _string_in_place_of_scalar(branch)) is not None:
            return found
    return None


def validate(config: dict, schema_path: str | Path = SCHEMA_FILE) -> dict:
    """Raise ConfigError naming the first bad key (the most specific), else return ``config``.

    Strings from Snakemake's `--config` are first turned into the numbers the schema expects.
    """
    coerce_command_line(config, load_schema(schema_path))
    if message := schema_error(config, load_schema(schema_path)):
        raise ConfigError(message)

    from memnet import datasets
    from memnet.experiments import plan

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
    try:
        plan(config)  # cross-checks: every baseline an experiment names must be defined
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return config


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
