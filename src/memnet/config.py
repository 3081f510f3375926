"""Validation of the pipeline's config against its JSON schema, with messages that name the key."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml


class ConfigError(ValueError):
    """The config is invalid; the message names the key and says what is expected."""


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate(config: dict, schema_path: str | Path) -> dict:
    """Raise ConfigError naming the first bad key (the most specific), else return ``config``."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (-len(e.absolute_path), e.message))
    if errors:
        err = errors[0]
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
            raise ConfigError(f"config key '{_key(err.absolute_path)}': {err.message}{hint}")
        if err.validator == "pattern" and "description" in err.schema:
            raise ConfigError(
                f"config key '{_key(err.absolute_path)}': {err.instance!r} is not allowed here; "
                f"expected {err.schema['description']}"
            )
        raise ConfigError(f"config key '{_key(err.absolute_path)}': {err.message}")

    from memnet.experiments import plan

    try:
        plan(config)  # cross-checks: every baseline an experiment names must be defined
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return config
