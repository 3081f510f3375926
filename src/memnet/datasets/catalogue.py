"""The catalogue of datasets: the shipped declarations (config/datasets.yaml) and a config's own
(`dataset_declarations`), each checked by the schema and resolved into a DatasetSpec: format, files
with their sizes and sha256, the URLs that serve them, class names and image shape."""

from __future__ import annotations

import copy
import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

DECLARATIONS_FILE = Path(__file__).resolve().parents[3] / "config" / "datasets.yaml"
CONFIG_KEY = "dataset_declarations"
FORMATS = ("idx", "cifar-python", "npz")
ROLES = {
    "idx": ("train_images", "train_labels", "test_images", "test_labels"),
    "cifar-python": ("archive",),
    "npz": ("arrays",),
}


@dataclass(frozen=True)
class RemoteFile:
    size: int  # bytes
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset's declaration (see config/datasets.yaml)."""

    name: str
    files: dict[str, RemoteFile]  # file name -> size and sha256
    urls: tuple[str, ...]  # base URLs, tried in order; the file name is appended
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]  # (C, H, W)
    n_train: int
    n_test: int
    format: str = "npz"
    roles: dict[str, str] = field(default_factory=dict)  # role of the format -> file name
    label_key: str = "labels"  # cifar-python: the batches' label key
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # cifar-python: batches
    description: str = ""
    instructions: str = ""  # how to get the files when no URL serves them

    def file_of(self, role: str) -> tuple[str, RemoteFile]:
        name = self.roles[role]
        return name, self.files[name]

    def declaration(self) -> dict:
        """The declaration as plain data (what config/datasets.yaml holds for it)."""
        out = {
            "format": self.format,
            "files": {
                role: {
                    "name": name,
                    "size": self.files[name].size,
                    "sha256": self.files[name].sha256,
                }
                for role, name in self.roles.items()
            },
            "urls": list(self.urls),
            "classes": list(self.classes),
            "image_shape": list(self.image_shape),
            "n_train": self.n_train,
            "n_test": self.n_test,
        }
        if self.format == "cifar-python":
            out["label_key"] = self.label_key
            out["members"] = {part: list(names) for part, names in self.members.items()}
        for key in ("description", "instructions"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


CIFAR10_MEMBERS = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}


def spec_from_declaration(name: str, decl: dict) -> DatasetSpec:
    """A DatasetSpec from a declaration already checked against the schema."""
    files = {f["name"]: RemoteFile(int(f["size"]), f["sha256"]) for f in decl["files"].values()}
    members = decl.get("members") or (CIFAR10_MEMBERS if decl["format"] == "cifar-python" else {})
    return DatasetSpec(
        name=name,
        files=files,
        urls=tuple(decl.get("urls", ())),
        classes=tuple(str(c) for c in decl["classes"]),
        image_shape=tuple(int(d) for d in decl["image_shape"]),
        n_train=int(decl["n_train"]),
        n_test=int(decl["n_test"]),
        format=decl["format"],
        roles={role: f["name"] for role, f in decl["files"].items()},
        label_key=decl.get("label_key", "labels"),
        members={part: tuple(names) for part, names in members.items()},
        description=decl.get("description", ""),
        instructions=decl.get("instructions", ""),
    )


class DeclarationError(ValueError):
    """A dataset declaration is invalid; the message names the file or config key."""


def _resolve(raw: dict[str, dict], where: str, prefix: tuple = ()) -> dict[str, dict]:
    """Declarations with every `extends` replaced by the keys of the declaration it names."""
    out: dict[str, dict] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> dict:
        if name in out:
            return out[name]
        decl = raw[name]
        base_name = decl.get("extends")
        if base_name is None:
            resolved = copy.deepcopy(decl)
        else:
            key = f"{where} '{_join(prefix, name)}.extends'"
            if base_name not in raw:
                known = ", ".join(sorted(raw))
                raise DeclarationError(f"{key}: unknown dataset {base_name!r}; known: {known}")
            if base_name in chain:
                raise DeclarationError(f"{key}: a cycle ({' -> '.join((*chain, base_name))})")
            base = resolve(base_name, (*chain, base_name))
            resolved = {k: v for k, v in copy.deepcopy(base).items() if k != "description"}
            resolved.update(copy.deepcopy({k: v for k, v in decl.items() if k != "extends"}))
        out[name] = resolved
        return resolved

    for name in raw:
        resolve(name, (name,))
    return out


def _check(resolved: dict[str, dict], where: str, prefix: tuple = ()) -> dict[str, DatasetSpec]:
    from memnet.schema import load_schema, schema_error

    schema = load_schema()
    declaration_schema = {"$defs": schema["$defs"], "$ref": "#/$defs/dataset_declaration"}
    specs = {}
    for name, decl in resolved.items():
        if message := schema_error(decl, declaration_schema, (*prefix, name), where):
            raise DeclarationError(message)
        spec = spec_from_declaration(name, decl)
        if len(spec.files) != len(spec.roles):
            raise DeclarationError(
                f"{where} '{_join(prefix, name)}.files': two roles name one file"
            )
        specs[name] = spec
    return specs


def _join(prefix: tuple, name: str) -> str:
    return ".".join((*prefix, name))


@functools.cache
def _shipped_raw(path: Path = DECLARATIONS_FILE) -> dict[str, dict]:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise DeclarationError(f"{path}: cannot read the dataset declarations ({err})") from err
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise DeclarationError(f"{path}: expected a mapping of dataset name -> declaration")
    return raw


@functools.cache
def _shipped_resolved() -> dict[str, dict]:
    return _resolve(_shipped_raw(), f"{DECLARATIONS_FILE.name} key")


@functools.cache
def _shipped() -> dict[str, DatasetSpec]:
    return _check(_shipped_resolved(), f"{DECLARATIONS_FILE.name} key")


def declarations(config: dict | None = None) -> dict[str, DatasetSpec]:
    """Every dataset declared: config/datasets.yaml, then the config's `dataset_declarations`.

    A config's declaration of a shipped name replaces it; ``{extends: <name>, ...}`` starts from
    another declaration (shipped or the config's) and changes some of its keys. An invalid
    declaration of the config raises a ConfigError naming its key.
    """
    extra = (config or {}).get(CONFIG_KEY) or {}
    if not extra:
        return dict(_shipped())
    return dict(_declarations(json.dumps(extra, sort_keys=True)))


@functools.lru_cache(maxsize=8)
def _declarations(extra_json: str) -> dict[str, DatasetSpec]:
    from memnet.schema import ConfigError

    extra = json.loads(extra_json)
    shipped = _shipped()

    prefix = (CONFIG_KEY,)
    try:
        resolved = _resolve({**_shipped_raw(), **extra}, "config key", prefix)
        # the config's own entries, and shipped ones that extend an entry the config replaced
        changed = {
            name: decl
            for name, decl in resolved.items()
            if name in extra or decl != _shipped_resolved().get(name)
        }
        checked = _check(changed, "config key", prefix)
    except DeclarationError as err:
        raise ConfigError(str(err)) from None
    return {name: checked.get(name) or shipped[name] for name in resolved}


REGISTRY: dict[str, DatasetSpec] = dict(_shipped())  # the shipped declarations


def get_spec(dataset: str, config: dict | None = None) -> DatasetSpec:
    """The declaration of ``dataset`` (shipped, or from the config's `dataset_declarations`)."""
    known = REGISTRY if config is None else declarations(config)
    if dataset not in known:
        raise ValueError(
            f"unknown dataset {dataset!r}; known: {', '.join(sorted(known))}. Declare a new one "
            f"under the config key {CONFIG_KEY} (README, 'Adding a dataset')"
        )
    return known[dataset]


def spec_from_json(name: str, text: str) -> DatasetSpec:
    """A declaration given as JSON (`memnet fetch/prepare --declaration`), checked by the schema."""
    try:
        decl = json.loads(text)
    except json.JSONDecodeError as err:
        raise DeclarationError(f"--declaration: not valid JSON ({err.msg})") from None
    if not isinstance(decl, dict):
        raise DeclarationError("--declaration: expected a JSON object")
    return _check({name: decl}, "--declaration key")[name]
