"""Datasets: declarations of verified raw files, fetching, conversion to one .npz, and loading.

A dataset is declared in YAML (config/datasets.yaml, or a config's `dataset_declarations`): its
format (``idx``, ``cifar-python`` or ``npz``), its files with their sizes and sha256, the URLs that
serve them, its class names and image shape. The wing reads top to bottom:

- :mod:`~memnet.datasets.catalogue`: the declarations, checked and resolved (``REGISTRY``,
  ``declarations``, ``get_spec``);
- :mod:`~memnet.datasets.fetch`: raw files from a mirror or the declared URLs, accepted only
  when their size and sha256 match;
- :mod:`~memnet.datasets.formats`: the readers of each raw format;
- :mod:`~memnet.datasets.prepared`: the one compressed .npz a run reads (``prepare``, ``load``,
  ``read_info``);
- :mod:`~memnet.datasets.splits`: stratified subsets;
- :mod:`~memnet.datasets.synthetic`: generated stand-ins with a real dataset's shape.

Every public name of these modules is importable from ``memnet.datasets`` itself.
"""

from memnet.datasets.catalogue import (
    CONFIG_KEY,
    DECLARATIONS_FILE,
    FORMATS,
    REGISTRY,
    ROLES,
    DatasetSpec,
    DeclarationError,
    RemoteFile,
    declarations,
    get_spec,
    spec_from_declaration,
    spec_from_json,
)
from memnet.datasets.fetch import (
    MIRROR_CONFIG_KEY,
    MIRROR_ENV,
    DatasetUnavailable,
    fetch_dataset,
    fetch_file,
    file_digest,
    resolve_mirror,
    verify_file,
)
from memnet.datasets.formats import read_cifar10_archive, read_cifar_archive, read_idx
from memnet.datasets.prepared import (
    NPZ_KEYS,
    Dataset,
    DatasetInfo,
    arrays_digest,
    load,
    prepare,
    read_info,
    stand_in_reason,
    write_npz,
)
from memnet.datasets.splits import stratified_indices, subset
from memnet.io import OutputError
from memnet.validation import to_unit_float

__all__ = [
    "CONFIG_KEY",
    "DECLARATIONS_FILE",
    "FORMATS",
    "MIRROR_CONFIG_KEY",
    "MIRROR_ENV",
    "NPZ_KEYS",
    "REGISTRY",
    "ROLES",
    "Dataset",
    "DatasetInfo",
    "DatasetSpec",
    "DatasetUnavailable",
    "DeclarationError",
    "OutputError",
    "RemoteFile",
    "arrays_digest",
    "declarations",
    "fetch_dataset",
    "fetch_file",
    "file_digest",
    "get_spec",
    "load",
    "prepare",
    "read_cifar10_archive",
    "read_cifar_archive",
    "read_idx",
    "read_info",
    "resolve_mirror",
    "spec_from_declaration",
    "spec_from_json",
    "stand_in_reason",
    "stratified_indices",
    "subset",
    "to_unit_float",
    "verify_file",
    "write_npz",
]
