"""The report's tables T1-T7, each as CSV (raw numbers), Markdown and LaTeX (booktabs), from the results.

T1 main results, T2 the claims' verdicts, T3 ablations, T4 efficiency; ours, beyond the paper: T5
accuracy against model memory, T6 class-incremental learning, T7 our findings. Every cell is computed from
results/tables/runs.csv and summary.csv (and paper/claims.yaml for the reported values); nothing is
cached or typed in; the saved models the claims' checks read are the files given, never a search.

    memnet tables --summary results/tables/summary.csv --runs results/tables/runs.csv \\
        --claims paper/claims.yaml --models results/runs/mnist/main/memnet/paper/seed0.npz \\
        results/runs/mnist/main/memnet/paper/seed0.json --out results/tables
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from memnet.models.registry import FAMILIES
from memnet.report import claims as claims_mod
from memnet.report.outputs import TABLES, load_builder
from memnet.report.results import (
    ANY,
    BYTES_PER_FLOAT,
    MAIN_MEMNET,
    MEMORY_SWEEPS,
    MODEL_NAMES,
    dataset_label,
    datasets_in,
    model_label,
    natural,
    ordered,
    select,
    t_interval,
)
from memnet.report.table_files import (  # noqa: F401  (part of this module's face)
    NO_RESULTS,
    latex_escape,
    to_latex,
    to_markdown,
    write_table,
)

LOCAL_REFERENCE = FAMILIES["local"].reference

# ---------------------------------------------------------------------------------------------
# The tables, as raw numbers


def table_main(
    summary: pd.DataFrame, claims: list[claims_mod.Claim], stand_ins: dict | None = None
) -> pd.DataFrame:
    """T1: one row per (dataset, model, variant) of the main experiment. A dataset whose data
    only stands in for the real one (``stand_ins``) gets no paper figure beside it."""
    rows = select(summary, experiment="main").copy()
    rows["label"] = [model_label(m, v) for m, v in zip(rows["model"], rows["variant"], strict=True)]
    rows["paper_reported"] = [
        math.nan
        if r.dataset in (stand_ins or {})
        else _reported(claims, r.dataset, r.model, r.variant)
        for r in rows.itertuples()
    ]
    columns = """
        dataset model variant label n_seeds accuracy_mean accuracy_std accuracy_ci_low
        accuracy_ci_high paper_reported n_passes uses_backprop uses_weight_sharing
        train_seconds_mean infer_seconds_mean model_bytes_mean
    """.split()
    return ordered(rows)[columns] if len(rows) else pd.DataFrame(columns=columns)


def _reported(claims, dataset: str, model: str, variant: str) -> float:
    """The paper's reported accuracy for a main setting; our own findings are never the paper's."""
    for c in claims:
        if (
            not c.ours
            and c.kind == "numeric"
            and c.metric == "accuracy"
            and c.dataset == dataset
            and c.select.get("experiment", "main") == "main"
            and (c.select.get("model"), c.select.get("variant")) == (model, variant)
        ):
            return float(c.reported)
    return math.nan


def table_claims(
    claims: list[claims_mod.Claim], verdicts: list[claims_mod.Verdict]
) -> pd.DataFrame:
    """T2: one row per claim with its verdict and what decided it."""
    by_id = {v.id: v for v in verdicts}
    rows = []
    for c in claims:
        v = by_id[c.id]
        rows.append(
            {
                "id": c.id,
                "claim": c.claim,
                "kind": c.kind,
                "source": c.source,
                "dataset": c.dataset or "",
                "metric": c.metric or c.check,
                "reported": c.reported if c.reported is not None else math.nan,
                "tolerance": c.tolerance if c.kind == "numeric" else math.nan,
                "comparison": c.comparison if c.kind == "numeric" else "",
                "measured": v.measured if v.measured is not None else math.nan,
                "verdict": v.verdict,
                "detail": v.detail,
            }
        )
    return pd.DataFrame(rows)


def changed_params(params: dict, reference: dict) -> tuple[str, str, str]:
    """(parameter, value, reference value) of an ablation: the parameters whose value differs from
    the reference run's, each joined by ', ' when several changed ('' when none did)."""
    changed = sorted(k for k in {*params, *reference} if params.get(k) != reference.get(k))
    return (
        ", ".join(changed),
        ", ".join(_shown(params.get(k)) for k in changed),
        ", ".join(_shown(reference.get(k)) for k in changed),
    )


def _shown(value) -> str:
    """A parameter's value as a table shows it: null as 'none', lists as JSON."""
    if value is None:
        return "none"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


LOCAL_MAIN = {"experiment": "main", "model": "local", "variant": LOCAL_REFERENCE}


def _reference(summary, dataset, experiment, reference):
    """(experiment, summary row) of ``reference`` (experiment, model, variant) on ``dataset``:
    its run in the ablations' own experiment if there is one, else in its own."""
    for exp in (experiment, reference["experiment"]):
        rows = select(summary, dataset, **{**reference, "experiment": exp})
        if len(rows):
            return exp, rows.iloc[0]
    return None


def _seed_accuracy(runs, dataset, experiment, model, variant) -> pd.Series:
    rows = select(runs, dataset, experiment=experiment, model=model, variant=variant)
    return rows.groupby("seed")["accuracy"].mean()


def _reference_params(runs, dataset, experiment, reference) -> dict:
    rows = select(runs, dataset, **{**reference, "experiment": experiment})
    return json.loads(rows["params"].iloc[0]) if len(rows) else {}


def table_ablations(
    summary: pd.DataFrame,
    runs: pd.DataFrame,
    experiment: str = "ablations",
    reference: dict = MAIN_MEMNET,
) -> pd.DataFrame:
    """T3 (and T8 for the local model): per dataset, the reference run, then each ablation of
    ``experiment`` with its paired difference to it (seed by seed)."""
    columns = """
        dataset parameter value paper_value variant is_paper n_seeds accuracy_mean
        accuracy_ci_low accuracy_ci_high diff_mean diff_ci_low diff_ci_high n_paired
    """.split()
    model, ref_variant = reference["model"], reference["variant"]
    ablations = select(summary, experiment=experiment, model=model)
    rows = []
    for dataset in datasets_in(ablations):
        found = _reference(summary, dataset, experiment, reference)
        if found is None:
            continue
        ref_experiment, ref = found
        ref_seeds = _seed_accuracy(runs, dataset, ref_experiment, model, ref_variant)
        ref_params = _reference_params(runs, dataset, ref_experiment, reference)
        rows.append(
            _ablation_row(
                dataset, ref_variant, "", "", ref_variant, True, ref, ref_seeds, ref_seeds
            )  # fmt: skip
        )
        here = select(ablations, dataset)
        for variant in sorted(set(here["variant"]) - {ref_variant}, key=natural):
            row = select(here, variant=variant).iloc[0]
            params = _reference_params(
                runs, dataset, experiment, {"model": model, "variant": row["variant"]}
            )
            param, value, ref_value = changed_params(params, ref_params)
            seeds = _seed_accuracy(runs, dataset, experiment, model, row["variant"])
            rows.append(
                _ablation_row(
                    dataset, param, value, ref_value, row["variant"], False, row, seeds, ref_seeds
                )  # fmt: skip
            )
    return pd.DataFrame(rows, columns=columns)


def table_local_ablations(summary: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """T8 (ours): the locally connected model's ablations, each against its `default` variant
    (its run among the ablations, else in the main experiment; the columns of T3, paper_value
    holding the default's value)."""
    return table_ablations(summary, runs, "local_ablations", LOCAL_MAIN)


def _ablation_row(dataset, param, value, paper_value, variant, is_paper, row, seeds, ref_seeds):
    common = sorted(set(seeds.index) & set(ref_seeds.index))
    diffs = (seeds[common] - ref_seeds[common]).to_numpy(float)
    low, high = t_interval(diffs)
    return {
        "dataset": dataset,
        "parameter": param,
        "value": value,
        "paper_value": paper_value,
        "variant": variant,
        "is_paper": is_paper,
        "n_seeds": int(row["n_seeds"]),
        "accuracy_mean": float(row["accuracy_mean"]),
        "accuracy_ci_low": float(row["accuracy_ci_low"]),
        "accuracy_ci_high": float(row["accuracy_ci_high"]),
        "diff_mean": float(diffs.mean()) if len(diffs) else math.nan,
        "diff_ci_low": low,
        "diff_ci_high": high,
        "n_paired": len(common),
    }


def table_efficiency(summary: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """T4: per model at its main setting, mean time, throughput (per run, then mean) and memory."""
    columns = """
        dataset model variant label n_train n_test train_seconds_mean infer_seconds_mean
        train_samples_per_second infer_samples_per_second peak_memory_bytes_mean
        model_bytes_mean
    """.split()
    main = select(runs, experiment="main").copy()
    if main.empty:
        return pd.DataFrame(columns=columns)
    main["train_samples_per_second"] = main["n_train"] / main["train_seconds"].where(
        main["train_seconds"] > 0
    )
    main["infer_samples_per_second"] = main["n_test"] / main["infer_seconds"].where(
        main["infer_seconds"] > 0
    )
    per_run = main.groupby(["dataset", "model", "variant"], sort=False)[
        ["n_train", "n_test", "train_samples_per_second", "infer_samples_per_second"]
    ].mean()
    rows = select(summary, experiment="main").set_index(["dataset", "model", "variant"])
    table = rows.join(per_run, how="inner").reset_index()
    table["label"] = [
        model_label(m, v) for m, v in zip(table["model"], table["variant"], strict=True)
    ]
    return ordered(table)[columns]


SWEPT = {"neurons": "neurons", "local_banks": "per bank"}  # what a memory sweep's x counts


def table_memory(summary: pd.DataFrame) -> pd.DataFrame:
    """T5 (ours): accuracy against the learnt state in stored floats (model_bytes / 4), at each
    point of each memory model's sweep (MEMORY_SWEEPS) and at each baseline's main setting."""
    columns = """
        dataset model variant label setting experiment x n_seeds accuracy_mean accuracy_ci_low
        accuracy_ci_high model_bytes_mean stored_floats
    """.split()
    parts = [
        select(summary, experiment=experiment, model=model, x=ANY)
        for model, experiment in MEMORY_SWEEPS.items()
    ]
    main = select(summary, experiment="main")
    parts.append(main[~main["model"].isin(list(MEMORY_SWEEPS))])
    rows = pd.concat(parts, ignore_index=True)
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows["label"] = [MODEL_NAMES.get(m, m) if m in MEMORY_SWEEPS else model_label(m, v)
                     for m, v in zip(rows["model"], rows["variant"], strict=True)]  # fmt: skip
    rows["setting"] = [
        f"{x:,.0f} {SWEPT[e]}" if e in SWEPT else "main setting"
        for e, x in zip(rows["experiment"], rows["x"], strict=True)
    ]
    rows["stored_floats"] = rows["model_bytes_mean"] / BYTES_PER_FLOAT
    return ordered(rows)[columns]


def joint_variant(model: str, variant: str) -> str:
    """The main experiment's variant that a class-incremental run learns jointly: for the Memory
    Network 'paper-known' -> 'paper' (the horizon only matters in a stream); others unchanged."""
    return variant.rsplit("-", 1)[0] if model == "memnet" else variant


def table_incremental(
    summary: pd.DataFrame, runs: pd.DataFrame, anchors: list[dict]
) -> pd.DataFrame:
    """T6: final accuracy and forgetting of each model on the class-incremental stream, with its
    joint accuracy (the main experiment) beside it; then the published anchors, marked as such."""
    columns = """
        dataset model variant label source n_seeds final_mean final_ci_low final_ci_high
        forgetting_mean forgetting_ci_low forgetting_ci_high joint_mean
    """.split()
    rows = []
    stream = select(runs, experiment="incremental")
    for (dataset, model, variant), group in stream.groupby(
        ["dataset", "model", "variant"], sort=False
    ):
        final = group["accuracy"].to_numpy(float)
        forgetting = group["forgetting"].to_numpy(float)
        joint = select(summary, dataset, experiment="main", model=model,
                       variant=joint_variant(model, variant))  # fmt: skip
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "variant": variant,
                "label": model_label(model, variant),
                "source": "measured here",
                "n_seeds": len(group),
                "final_mean": final.mean(),
                "final_ci_low": t_interval(final)[0],
                "final_ci_high": t_interval(final)[1],
                "forgetting_mean": forgetting.mean(),
                "forgetting_ci_low": t_interval(forgetting)[0],
                "forgetting_ci_high": t_interval(forgetting)[1],
                "joint_mean": joint["accuracy_mean"].iloc[0] if len(joint) else math.nan,
            }
        )
    table = ordered(pd.DataFrame(rows, columns=columns)) if rows else pd.DataFrame(columns=columns)
    published = [
        {
            "dataset": a["dataset"],
            "model": "published",
            "variant": a["method"],
            "label": a["method"],
            "source": f"published: {a['source']}",
            "n_seeds": a.get("n_seeds", math.nan),
            "final_mean": a["accuracy"],
            "final_ci_low": math.nan,
            "final_ci_high": math.nan,
            "forgetting_mean": math.nan,
            "forgetting_ci_low": math.nan,
            "forgetting_ci_high": math.nan,
            "joint_mean": math.nan,
        }
        for a in anchors
        if "model" not in a  # a peer's anchor is T9's (memnet.report.peers)
        and not table.empty
        and a["dataset"] in set(table["dataset"])
    ]
    return pd.concat([table, pd.DataFrame(published, columns=columns)], ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Display: formatted strings for Markdown and LaTeX


def pct(value: float, digits: int = 2) -> str:
    return "–" if value is None or pd.isna(value) else f"{100 * value:.{digits}f}"


def pct_interval(low: float, high: float, digits: int = 2) -> str:
    if pd.isna(low) or pd.isna(high):
        return "–"
    return f"[{100 * low:.{digits}f}, {100 * high:.{digits}f}]"


def seconds(value: float) -> str:
    if pd.isna(value):
        return "–"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def megabytes(value: float) -> str:
    return "–" if pd.isna(value) else f"{value / 1e6:,.2f}"


def count(value: float) -> str:
    return "–" if pd.isna(value) else f"{value:,.0f}"


def yes_no(value) -> str:
    """yes, no, or unknown (a fact the model does not declare)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    return "yes" if bool(value) else "no"


def display_main(t1: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Dataset": t1["dataset"].map(dataset_label),
            "Model": t1["label"],
            "Accuracy (%)": [
                pct(m) if pd.isna(s) else f"{pct(m)} ± {pct(s)}"
                for m, s in zip(t1["accuracy_mean"], t1["accuracy_std"], strict=True)
            ],
            "95% CI (%)": [
                pct_interval(lo, hi)
                for lo, hi in zip(t1["accuracy_ci_low"], t1["accuracy_ci_high"], strict=True)
            ],
            "Paper (%)": [("–" if pd.isna(r) else f"≈{pct(r, 0)}") for r in t1["paper_reported"]],
            **model_facts(t1),
            "Size (MB)": t1["model_bytes_mean"].map(megabytes),
        }
    )


def model_facts(t: pd.DataFrame) -> dict:
    """The display columns of a setting's seeds, passes, facts and mean times (T1, T9)."""
    return {
        "Seeds": t["n_seeds"].map(count),
        "Passes": t["n_passes"].map(count),
        "Backprop": t["uses_backprop"].map(yes_no),
        "Conv./sharing": t["uses_weight_sharing"].map(yes_no),
        "Train (s)": t["train_seconds_mean"].map(seconds),
        "Inference (s)": t["infer_seconds_mean"].map(seconds),
    }


def display_claims(t2: pd.DataFrame) -> pd.DataFrame:
    def reported(row) -> str:
        if pd.isna(row["reported"]):
            return "–"
        return claims_mod.fmt_value(row["metric"], row["reported"])

    def measured(row) -> str:
        if pd.isna(row["measured"]):
            return "–"
        if row["kind"] == "numeric":
            return claims_mod.fmt_value(row["metric"], row["measured"])
        unit = claims_mod.CHECK_UNITS.get(row["metric"])
        if unit == "seconds":
            return f"{seconds(row['measured'])} s"
        return claims_mod.fmt_value(unit, row["measured"])

    return pd.DataFrame(
        {
            "Claim": t2["claim"],
            "Source": t2["source"],
            "Dataset": t2["dataset"].map(
                lambda d: "all" if pd.isna(d) or not d else dataset_label(d)
            ),
            "Reported": [reported(r) for _, r in t2.iterrows()],
            "Measured": [measured(r) for _, r in t2.iterrows()],
            "Verdict": t2["verdict"],
            "Why": t2["detail"],
        }
    )


def display_incremental(t6: pd.DataFrame) -> pd.DataFrame:
    def with_interval(row, stat) -> str:
        if pd.isna(row[f"{stat}_mean"]):
            return "–"
        text = pct(row[f"{stat}_mean"])
        if not pd.isna(row[f"{stat}_ci_low"]):
            text += f" ({pct_interval(row[f'{stat}_ci_low'], row[f'{stat}_ci_high'])})"
        return text

    return pd.DataFrame(
        {
            "Dataset": t6["dataset"].map(dataset_label),
            "Model": t6["label"],
            "Final accuracy (95% CI)": [with_interval(r, "final") for _, r in t6.iterrows()],
            "Forgetting (95% CI)": [with_interval(r, "forgetting") for _, r in t6.iterrows()],
            "Joint accuracy": ["–" if pd.isna(v) else pct(v) for v in t6["joint_mean"]],
            "Seeds": [count(n) if not pd.isna(n) else "–" for n in t6["n_seeds"]],
            "Source": t6["source"],
        }
    )


def display_memory(t5: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Dataset": t5["dataset"].map(dataset_label),
            "Model": t5["label"],
            "Setting": t5["setting"],
            "Stored floats": t5["stored_floats"].map(count),
            "Accuracy (%)": t5["accuracy_mean"].map(pct),
            "95% CI (%)": [
                pct_interval(lo, hi)
                for lo, hi in zip(t5["accuracy_ci_low"], t5["accuracy_ci_high"], strict=True)
            ],
            "Seeds": t5["n_seeds"].map(count),
        }
    )


def display_ablations(t3: pd.DataFrame, reference: str = "paper") -> pd.DataFrame:
    """T3's display; T8's with ``reference="default"`` (the local model's reference variant)."""

    def value(row) -> str:
        if row["is_paper"]:
            return "all `paper` defaults" if reference == "paper" else f"the `{reference}` variant"
        if row["paper_value"]:
            return f"{row['value']} ({reference}: {row['paper_value']})"
        return row["value"]

    def diff(row) -> str:
        if row["is_paper"]:
            return "reference"
        text = f"{100 * row['diff_mean']:+.2f}"
        if not pd.isna(row["diff_ci_low"]):
            text += f" [{100 * row['diff_ci_low']:+.2f}, {100 * row['diff_ci_high']:+.2f}]"
        return text

    return pd.DataFrame(
        {
            "Dataset": t3["dataset"].map(dataset_label),
            "Parameter": t3["parameter"],
            "Value": [value(r) for _, r in t3.iterrows()],
            "Accuracy (%)": t3["accuracy_mean"].map(pct),
            "95% CI (%)": [
                pct_interval(lo, hi)
                for lo, hi in zip(t3["accuracy_ci_low"], t3["accuracy_ci_high"], strict=True)
            ],
            f"Δ vs {reference} (pp) [95% CI]": [diff(r) for _, r in t3.iterrows()],
            "Seeds": t3["n_paired"].map(count),
        }
    )


def display_efficiency(t4: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Dataset": t4["dataset"].map(dataset_label),
            "Model": t4["label"],
            "Train (s)": t4["train_seconds_mean"].map(seconds),
            "Inference (s)": t4["infer_seconds_mean"].map(seconds),
            "Train (samples/s)": t4["train_samples_per_second"].map(count),
            "Inference (samples/s)": t4["infer_samples_per_second"].map(count),
            "Peak memory (MB)": t4["peak_memory_bytes_mean"].map(megabytes),
            "Model size (MB)": t4["model_bytes_mean"].map(megabytes),
        }
    )


# ---------------------------------------------------------------------------------------------
# Writers


@dataclass
class TableContext:
    """What every table builder may read: the results, the claims and their verdicts, the published
    anchors T6 shows beside ours, and the datasets whose data only stands in for the real one."""

    summary: pd.DataFrame
    runs: pd.DataFrame
    claims: list
    evidence: claims_mod.Evidence
    verdicts: dict
    anchors: list

    @property
    def paper(self) -> list:
        return [c for c in self.claims if not c.ours]


def build_main(ctx: TableContext):
    t1 = table_main(ctx.summary, ctx.paper, ctx.evidence.stand_ins)
    return t1, display_main(t1)


def build_claims(ctx: TableContext):
    t2 = table_claims(ctx.paper, ctx.verdicts)
    return t2, display_claims(t2)


def build_ablations(ctx: TableContext):
    t3 = table_ablations(ctx.summary, ctx.runs)
    return t3, display_ablations(t3)


def build_efficiency(ctx: TableContext):
    t4 = table_efficiency(ctx.summary, ctx.runs)
    return t4, display_efficiency(t4)


def build_memory(ctx: TableContext):
    t5 = table_memory(ctx.summary)
    return t5, display_memory(t5)


def build_incremental(ctx: TableContext):
    t6 = table_incremental(ctx.summary, ctx.runs, ctx.anchors)
    return t6, display_incremental(t6)


def build_findings(ctx: TableContext):
    t7 = table_claims([c for c in ctx.claims if c.ours], ctx.verdicts)
    return t7, display_claims(t7)


def build_local_ablations(ctx: TableContext):
    t8 = table_local_ablations(ctx.summary, ctx.runs)
    return t8, display_ablations(t8, LOCAL_REFERENCE)


HIERARCHY_REFERENCE = FAMILIES["hierarchy"].reference
HIERARCHY_MAIN = {"experiment": "main", "model": "hierarchy", "variant": HIERARCHY_REFERENCE}


def build_hierarchy_ablations(ctx: TableContext):
    """T10 (ours): the hierarchical model's ablations against its `default` variant, as T8."""
    t10 = table_ablations(ctx.summary, ctx.runs, "hierarchy_ablations", HIERARCHY_MAIN)
    return t10, display_ablations(t10, HIERARCHY_REFERENCE)


def build_all(
    summary: pd.DataFrame,
    runs: pd.DataFrame,
    claims: list[claims_mod.Claim],
    models: list[Path],
    out_dir: str | Path,
    anchors: list[dict] = (),
    stand_ins: dict[str, str] | None = None,
    captions: dict[str, str] | None = None,
) -> list[Path]:
    """Every table of the outputs catalogue under ``out_dir``; ``models`` are the saved-model files
    the claims' checks read, ``anchors`` the published results that T6 shows beside ours,
    ``stand_ins`` the datasets whose data only stands in for the real one (their paper claims are
    not measurable), ``captions`` each table's caption text (its .rst), for the LaTeX caption."""
    evidence = claims_mod.Evidence(
        summary=summary, runs=runs, models=list(models), stand_ins=dict(stand_ins or {})
    )
    ctx = TableContext(
        summary=summary,
        runs=runs,
        claims=list(claims),
        evidence=evidence,
        verdicts=claims_mod.evaluate_all(claims, evidence),
        anchors=list(anchors),
    )
    written = []
    for stem, output in TABLES.items():
        table, display = load_builder(output)(ctx)
        caption = (captions or {}).get(stem) or output.title
        written += write_table(table, display, stem, out_dir, output.wide, caption)
    return written
