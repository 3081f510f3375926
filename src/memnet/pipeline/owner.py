"""One config per results directory: the config file(s) that write a results directory are recorded
in it (``config.json``), and a different config that would write there is refused, so that its
tables, figures and report never mix with another config's.

The record is written when a run of the pipeline starts (the Snakefile's ``onstart``: never by a dry
run); the check runs whenever the Snakefile is read. A config is named by its first config file:
editing that file in place, overriding keys with ``--config``, or adding further config files after
it (``--configfile config/quick.yaml my-family.yaml``, docs/extending.md) keep it the same config.
"""

from __future__ import annotations

import json
from pathlib import Path

from memnet.io import write_json
from memnet.pipeline import paths
from memnet.schema import ConfigError


def record_path(results: str | Path) -> Path:
    return Path(results) / paths.CONFIG_RECORD


def config_names(config_files: list[str | Path]) -> list[str]:
    """The config files as they are recorded: absolute paths, symbolic links resolved."""
    return [str(Path(f).resolve()) for f in config_files]


def check(results: str | Path, config_files: list[str | Path]) -> None:
    """Raise ConfigError when ``results`` holds another config's outputs (its record names other
    files); a directory without a record, or with an unreadable one, belongs to nobody yet."""
    record = record_path(results)
    try:
        owner = json.loads(record.read_text())["config_files"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    mine = config_names(config_files)
    if owner[:1] != mine[:1]:
        raise ConfigError(
            f"config key 'results': {results} holds the outputs of the config {owner[0]}, and this "
            f"run's config is {mine[0]}. Give this config its own `results` directory "
            f"(for example results/{Path(mine[0]).stem}), or, to let it take that directory over, "
            f"delete {record}"
        )


def record(results: str | Path, config_files: list[str | Path]) -> Path:
    """Write the record of the config that writes ``results`` (atomically)."""
    path = record_path(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"config_files": config_names(config_files)})
    return path
