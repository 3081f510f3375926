"""The names of the pipeline's tables and figures, cheap to import (the Snakefile reads them)."""

from __future__ import annotations

TABLES = {
    "T1_main": "Main results: test accuracy over seeds (mean ± std, 95% t-interval) per model.",
    "T2_claims": "The paper's claims and their verdicts on this run.",
    "T3_ablations": "Ablations of the Memory Network: accuracy and paired difference to `paper`.",
    "T4_efficiency": "Efficiency at each model's main setting: time, throughput and memory.",
    "T5_memory": (
        "Ours, beyond the paper: test accuracy against the model's memory in stored floats "
        "(model bytes / 4), along each memory model's sweep and for each baseline's main setting."
    ),
    "T6_incremental": (
        "Ours, beyond the paper: class-incremental learning. Final accuracy on all classes and "
        "forgetting, beside each model's joint accuracy; published results of other methods, from "
        "another setup, in rows of their own."
    ),
    "T7_findings": "Ours, beyond the paper: our own findings and their verdicts on this run.",
    "T8_local_ablations": (
        "Ours, beyond the paper: ablations of the locally connected Memory Network, each design "
        "choice changed alone, with its paired difference to the `default` variant."
    ),
}


def figure_names(datasets: list[str]) -> list[str]:
    """The stem of every figure file the CLI writes for ``datasets`` (the pipeline's outputs)."""
    return [
        "F1_neurons",
        "F2_samples",
        *(f"F3_ablations_{d}" for d in datasets),
        *(f"F4_memories_{d}" for d in datasets),
        "F5_confusion",
        "F6_pareto",
        "F7_memory",
        "F8_incremental",
    ]
