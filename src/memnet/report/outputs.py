"""The catalogue of the pipeline's tables and figures: one entry per output, read by every place
that names one (cheap to import: the Snakefile reads it).

An entry gives the output's stem (its file name), its title, whether it is the paper's or ours
(beyond the paper: the report's section 6), and its builder (``module:function``, imported when the
output is built). Its one caption is ``workflow/report/<stem>.rst``: Snakemake's report, the
replication report and the LaTeX table read that file. The tables and figures CLIs, `report.smk`,
the replication report and the notebooks all iterate over this catalogue.

A new table or figure of memnet is a builder, one entry below and a caption file
(docs/extending.md). A rule of a user's own (``workflow/rules/extra/*.smk``) joins the report with
:func:`register`, without editing this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CAPTIONS_DIR = "workflow/report"  # relative to the repository (the Snakefile's directory)


@dataclass(frozen=True)
class Output:
    """One table or figure.

    Parameters
    ----------
    stem : str
        ``<id>_<name>``: the file name without extension (T1_main, F3_ablations); an output drawn per
        dataset is written as ``<stem>_<dataset>``.
    title : str
        Its heading in the replication report.
    ours : bool
        Whether it is our work beyond the paper (the report keeps it apart from the paper's).
    builder : str or None
        ``module:function``: for a table, ``function(ctx) -> (table, display)``
        (memnet.report.tables.TableContext); for a figure ``function(ctx)`` or, per dataset,
        ``function(ctx, dataset)`` -> a matplotlib Figure (memnet.report.figures.FigureContext).
        None for an output a user's rule makes itself (``file`` is then the file it writes).
    per_dataset : bool
        Whether one file is drawn per dataset.
    wide : dict
        Tables: LaTeX widths of the columns that wrap ({column: width}).
    file : str or None
        A user rule's output (register): the file it writes, which the report shows.
    caption : str or None
        A user rule's caption file; None: ``workflow/report/<stem>.rst``.
    """

    stem: str
    title: str
    ours: bool
    builder: str | None
    per_dataset: bool = False
    wide: dict = field(default_factory=dict, hash=False)
    file: str | None = None
    caption: str | None = None

    @property
    def id(self) -> str:
        return self.stem.split("_", 1)[0]

    @property
    def kind(self) -> str:
        return "table" if self.id.startswith("T") else "figure"

    @property
    def caption_file(self) -> str:
        """The caption, relative to the repository unless a user rule gave its own path."""
        return self.caption or f"{CAPTIONS_DIR}/{self.stem}.rst"

    def stems(self, datasets: list[str]) -> list[str]:
        """The file stems this output writes for ``datasets``."""
        return [f"{self.stem}_{d}" for d in datasets] if self.per_dataset else [self.stem]


_T = "memnet.report.tables"
_F = "memnet.report.figures"
_P = "memnet.report.peers"
_WIDE_CLAIMS = {"Claim": "4.5cm", "Why": "5.5cm"}

TABLES: dict[str, Output] = {
    o.stem: o
    for o in (
        Output("T1_main", "Main results", False, f"{_T}:build_main"),
        Output("T2_claims", "Claims and verdicts", False, f"{_T}:build_claims", wide=_WIDE_CLAIMS),
        Output("T3_ablations", "Ablations", False, f"{_T}:build_ablations"),
        Output("T4_efficiency", "Efficiency", False, f"{_T}:build_efficiency"),
        Output("T5_memory", "Accuracy vs model memory (ours)", True, f"{_T}:build_memory"),
        Output(
            "T6_incremental",
            "Class-incremental learning (ours)",
            True,
            f"{_T}:build_incremental",
            wide={"Source": "4cm"},
        ),
        Output(
            "T7_findings",
            "Our findings and their verdicts",
            True,
            f"{_T}:build_findings",
            wide=_WIDE_CLAIMS,
        ),
        Output(
            "T8_local_ablations",
            "Ablations of the locally connected model (ours)",
            True,
            f"{_T}:build_local_ablations",
        ),
        Output(
            "T9_peers",
            "Learners without backpropagation, side by side (ours)",
            True,
            f"{_P}:build_peers",
            wide={"Published (%)": "3cm"},
        ),
        Output(
            "T10_hierarchy_ablations",
            "Ablations of the hierarchical model (ours)",
            True,
            f"{_T}:build_hierarchy_ablations",
        ),
    )
}

FIGURES: dict[str, Output] = {
    o.stem: o
    for o in (
        Output("F1_neurons", "Accuracy vs number of neurons", False, f"{_F}:build_neurons"),
        Output("F2_samples", "Accuracy vs training samples", False, f"{_F}:build_samples"),
        Output("F3_ablations", "Ablations", False, f"{_F}:build_ablations", per_dataset=True),
        Output(
            "F4_memories",
            "Memories and hits per neuron",
            False,
            f"{_F}:build_memories",
            per_dataset=True,
        ),
        Output("F5_confusion", "Confusion matrices", False, f"{_F}:build_confusion"),
        Output("F6_pareto", "Accuracy vs training time", False, f"{_F}:build_pareto"),
        Output("F7_memory", "Accuracy vs model memory (ours)", True, f"{_F}:build_memory"),
        Output(
            "F8_incremental", "Class-incremental learning (ours)", True, f"{_F}:build_incremental"
        ),
        Output(
            "F9_peers",
            "Learners without backpropagation: accuracy vs training time (ours)",
            True,
            "memnet.report.peers_figure:build_peers_figure",
        ),
    )
}

# Outputs of users' own rules (workflow/rules/extra/*.smk), in the order they were registered.
EXTRA: dict[str, Output] = {}


def register(output: Output) -> Output:
    """Add a user rule's table or figure to the replication report (docs/extending.md)."""
    if output.builder is not None or output.file is None:
        raise ValueError(
            f"output {output.stem!r}: a user rule's output names the file its rule writes "
            "(file=...) and no builder"
        )
    if output.stem in TABLES or output.stem in FIGURES:
        raise ValueError(f"output {output.stem!r}: memnet's own output has that name; pick another")
    EXTRA[output.stem] = output
    return output


def table_stems() -> list[str]:
    return list(TABLES)


def figure_names(datasets: list[str]) -> list[str]:
    """The stem of every figure file the CLI writes for ``datasets`` (the pipeline's outputs)."""
    return [stem for o in FIGURES.values() for stem in o.stems(datasets)]


def stale_figures(directory, keep) -> list:
    """The files in ``directory`` named as figures of the catalogue (any dataset's) but not among
    ``keep``: left by an earlier run of other datasets; the figures CLI removes them."""
    from pathlib import Path

    kept = {Path(k).name for k in keep}

    def is_figure(stem: str) -> bool:
        return stem in FIGURES or any(
            o.per_dataset and stem.startswith(f"{o.stem}_") for o in FIGURES.values()
        )

    files = Path(directory).glob("*") if Path(directory).is_dir() else []
    return sorted(
        f
        for f in files
        if f.suffix in (".png", ".pdf") and is_figure(f.stem) and f.name not in kept
    )


def output_of(stem: str) -> Output:
    """The entry of a file stem: F3_ablations_mnist -> F3_ablations."""
    for catalogue in (TABLES, FIGURES, EXTRA):
        if stem in catalogue:
            return catalogue[stem]
    for o in FIGURES.values():
        if o.per_dataset and stem.startswith(f"{o.stem}_"):
            return o
    raise KeyError(f"{stem}: not an output of the catalogue (memnet.report.outputs)")


def load_builder(output: Output):
    """The builder function of ``output`` (imported now)."""
    import importlib

    module, _, name = output.builder.partition(":")
    return getattr(importlib.import_module(module), name)
