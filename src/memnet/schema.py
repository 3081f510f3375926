"""JSON-schema helpers: the config's schema, and messages that name the bad key (a leaf: no memnet imports)."""

from __future__ import annotations

import functools
import math
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
