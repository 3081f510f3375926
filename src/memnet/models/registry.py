"""The catalogue of model families: one entry per family, read by every other place that names one.

A family entry says which class the config's name builds, how the report labels and draws it, where
its variants live in the config, which variant is its reference, which experiment sweeps its memory
and how many threads a job gives it. ``make_model``, the config schema's model names, the result
labels and order, the figures' styles, the tables' references, the Snakemake thread policy, the
CLI's help and the package face all read :data:`FAMILIES`.

A researcher's own family needs no edit here: the config key ``model_families`` names an importable
class (any estimator with scikit-learn's ``fit``/``predict``) and a label, and :func:`families`
adds it (docs/extending.md). This module is cheap to import: classes are imported on first use.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

# Where a family's variants live in the config.
SINGLE = "single"  # one variant, `paper`, whose parameters are a top-level key (memnet:)
OWN_KEY = "own key"  # variants under a top-level key of the family's name (local:)
BASELINE = "baselines"  # variants under baselines.<family> (every baseline, and user families)

COLOURS = 10  # seaborn's colourblind palette has ten colours


@dataclass(frozen=True)
class Family:
    """One model family.

    Parameters
    ----------
    name : str
        The family's name in the config, on the command line, in paths and in runs.csv.
    cls : str
        ``module:Class`` (or ``module.Class``) of its estimator, imported on first use.
    label : str
        What tables, figures and the report call it.
    colour : int
        Its colour: an index into seaborn's "colorblind" palette (fixed, so that a new family
        changes no colour of another).
    marker, dashes : str, str or tuple
        Its matplotlib marker and line style.
    variants : str
        Where its variants live in the config: SINGLE, OWN_KEY or BASELINE.
    reference : str or None
        The variant that its ablations and memory sweep vary, and that tables compare with.
    memory_sweep : str or None
        The experiment that sweeps its memory (T5 and F7 draw it as a curve).
    single_threaded : bool
        Whether it uses one thread whatever the job's budget (so two of its jobs share 2 cores).
    tuned : bool
        Whether a run with no ``tau`` takes its threshold from the `tune` step.
    given_threads : bool
        Whether its constructor is given the job's thread budget (``n_threads``); the memory
        models take numba's thread count instead, which the job sets.
    builtin : bool
        Whether memnet ships it (False for a family from the config's ``model_families``).
    """

    name: str
    cls: str
    label: str
    colour: int
    marker: str
    dashes: str | tuple = "-"
    variants: str = BASELINE
    reference: str | None = None
    memory_sweep: str | None = None
    single_threaded: bool = False
    tuned: bool = False
    given_threads: bool = True
    builtin: bool = True

    def load_class(self) -> type:
        """The estimator class (imported now); a bad path is one ValueError that names it."""
        return import_class(self.cls, f"model family '{self.name}'")

    @property
    def wrapped(self) -> bool:
        """Whether the class is a foreign estimator (not a memnet.models Estimator): it is run
        through memnet.models.foreign.ForeignEstimator, and facts it does not declare are unknown."""
        return not self.builtin


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "memnet",
            "memnet.models.memory.network:MemoryNetwork",
            "Memory Network",
            colour=0,
            marker="o",
            dashes="-",
            variants=SINGLE,
            reference="paper",
            memory_sweep="neurons",
            tuned=True,
            given_threads=False,
        ),
        Family(
            "local",
            "memnet.models.memory.local:LocalMemoryNetwork",
            "Local Memory Network (ours)",
            colour=5,
            marker="P",
            dashes=(0, (3, 1)),
            variants=OWN_KEY,
            reference="default",
            memory_sweep="local_banks",
            given_threads=False,
        ),
        Family(
            "hierarchy",
            "memnet.models.memory.hierarchy:HierarchicalMemoryNetwork",
            "Hierarchical Memory Network (ours)",
            colour=9,
            marker="h",
            dashes=(0, (2, 1, 2, 3)),
            variants=OWN_KEY,
            reference="default",
            given_threads=False,
        ),
        Family(
            "mlp",
            "memnet.models.baselines:MLP",
            "MLP",
            colour=1,
            marker="s",
            dashes="--",
            single_threaded=True,
        ),
        Family(
            "cnn",
            "memnet.models.baselines:CNN",
            "CNN",
            colour=2,
            marker="^",
            dashes="-.",
            single_threaded=True,
        ),
        Family(
            "knn",
            "memnet.models.baselines:KNearestNeighbours",
            "kNN",
            colour=3,
            marker="D",
            dashes=":",
        ),
        Family(
            "ncm",
            "memnet.models.baselines:NearestClassMean",
            "NCM",
            colour=4,
            marker="v",
            dashes=(0, (5, 1, 1, 1)),
            single_threaded=True,
        ),
        # Peers (memnet.models.peers): learners without end-to-end backpropagation
        Family(
            "slda",
            "memnet.models.peers.slda:StreamingLDA",
            "Streaming LDA",
            colour=6,
            marker="X",
            dashes=(0, (1, 1)),
            single_threaded=True,
        ),
        Family(
            "rf_elm",
            "memnet.models.peers.rf_elm:RandomFieldELM",
            "RF-ELM",
            colour=7,
            marker="*",
            dashes=(0, (4, 2, 1, 2)),
        ),
        Family(
            "idm_knn",
            "memnet.models.peers.idm_knn:IDMNearestNeighbours",
            "IDM kNN",
            colour=8,
            marker="x",
            dashes=(0, (2, 1)),
        ),
        # All ten colours are taken: kNN's colour again, told apart by its marker and dashes
        Family(
            "krotov_hopfield",
            "memnet.models.peers.krotov_hopfield:KrotovHopfield",
            "Krotov-Hopfield",
            colour=3,
            marker="p",
            dashes=(0, (6, 2)),
        ),
    )
}

MEMNET = "memnet"
LOCAL = "local"
HIERARCHY = "hierarchy"
CONFIG_KEY = "model_families"
# Markers for families memnet does not ship, in turn (the shipped ones use o P h s ^ D v X * x p)
_SPARE_MARKERS = ("<", ">", "d", "8", "H", "1", "2", "3")
_SPARE_DASHES = ((0, (2, 2)), (0, (3, 1, 1, 1, 1, 1)), (0, (8, 2, 2, 2)), (0, (1, 2)))


def families(config: dict | None = None) -> dict[str, Family]:
    """The shipped families, then those of ``config``'s ``model_families`` in their order."""
    out = dict(FAMILIES)
    spare = 0
    for name, entry in ((config or {}).get(CONFIG_KEY) or {}).items():
        if name in FAMILIES:
            raise ValueError(
                f"config key '{CONFIG_KEY}.{name}': '{name}' is a family memnet ships; give "
                "yours another name"
            )
        out[name] = Family(
            name,
            entry["class"],
            entry.get("label", name),
            colour=(len(FAMILIES) + spare) % COLOURS,
            marker=_SPARE_MARKERS[spare % len(_SPARE_MARKERS)],
            dashes=_SPARE_DASHES[spare % len(_SPARE_DASHES)],
            single_threaded=bool(entry.get("single_threaded", False)),
            builtin=False,
        )
        spare += 1
    return out


def family(name: str, config: dict | None = None) -> Family:
    known = families(config)
    if name not in known:
        raise ValueError(
            f"unknown model '{name}'; expected one of {', '.join(known)} (or a family of your "
            f"own under the config key {CONFIG_KEY}: docs/extending.md)"
        )
    return known[name]


# ---- what the report needs: labels, order and styles, for runs of any family ---------------

_LABELS: dict[str, str] = {}  # families not shipped, as runs.csv names them (note_labels)


def note_labels(pairs) -> None:
    """Remember the labels of families that runs.csv names but memnet does not ship."""
    for model, label in pairs:
        if model not in FAMILIES and isinstance(label, str) and label:
            _LABELS[model] = label


def label(model: str) -> str:
    if model in FAMILIES:
        return FAMILIES[model].label
    return _LABELS.get(model, model)


def rank(model: str) -> int:
    """The family's place in the report's order: shipped ones first, then the others."""
    order = list(FAMILIES)
    return order.index(model) if model in order else len(order)


def style(model: str) -> tuple[int, str, str | tuple]:
    """(colour index, marker, dashes) of any family: a family not shipped gets a spare style,
    the same on every call (by its name's place among the other foreign names seen)."""
    if model in FAMILIES:
        f = FAMILIES[model]
        return f.colour, f.marker, f.dashes
    foreign = sorted({*_LABELS, model})
    i = foreign.index(model)
    return (
        (len(FAMILIES) + i) % COLOURS,
        _SPARE_MARKERS[i % len(_SPARE_MARKERS)],
        _SPARE_DASHES[i % len(_SPARE_DASHES)],
    )


PEERS_PACKAGE = "memnet.models.peers."


def peers() -> frozenset[str]:
    """The shipped families of memnet.models.peers: T9's rows whatever their backprop flag (the
    Krotov-Hopfield top layer is trained by gradient descent), and not among the backprop
    baselines that the paper's claims compare with."""
    return frozenset(f.name for f in FAMILIES.values() if f.cls.startswith(PEERS_PACKAGE))


def memory_sweeps() -> dict[str, str]:
    """Family -> the experiment that sweeps its memory (the memory models)."""
    return {f.name: f.memory_sweep for f in FAMILIES.values() if f.memory_sweep}


def make_model(model: str, params: dict, seed: int, threads: int, config: dict | None = None):
    """An unfitted, checked estimator of family ``model`` with ``params`` (a dict, as the config and
    the command line give it), seeded with ``seed``, given ``threads`` where its class takes
    ``n_threads``. An unknown model, an unknown parameter or a bad value: one ValueError that
    names it, before any training."""
    fam = family(model, config)
    cls = fam.load_class()
    if fam.wrapped:
        from memnet.models.foreign import ForeignEstimator

        return ForeignEstimator(cls, params, random_state=seed, name=model)
    fixed = {"random_state": seed}
    if fam.given_threads:
        fixed["n_threads"] = threads
    return cls.from_params(params, **fixed)


def import_class(path: str, where: str) -> type:
    """The class named ``module:Class`` or ``module.Class``; one ValueError naming ``where``."""
    module_name, _, attr = path.replace(":", ".").rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{where}: '{path}' is not a class path; write module.Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"{where}: cannot import module '{module_name}' of '{path}' ({exc}); is it installed, "
            "or on PYTHONPATH?"
        ) from None
    cls = getattr(module, attr, None)
    if not inspect.isclass(cls):
        raise ValueError(f"{where}: module '{module_name}' has no class '{attr}'")
    return cls
