"""The replication report, the review notebooks and the report rules of the workflow."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from fixtures_runs import (
    REPO,
    at_paper_scale,
    caption_files,
    confusion_files,
    figure_files,
    full_tree,
    quick_tree,
    rendered,
    run_report,
    run_tables,
    table_files,
)

from memnet.report import replication as report
from memnet.report.outputs import TABLES, figure_names

DATASETS = ["mnist", "cifar10"]


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    return rendered(full_tree(tmp_path_factory), DATASETS)


def test_html_is_self_contained_and_holds_every_figure(full_report):
    html = full_report.with_suffix(".html").read_text()
    figures_dir = full_report.parent.parent / "figures"
    stems = figure_names(DATASETS)
    sources = re.findall(r'<img[^>]*src="([^"]+)"', html)
    assert len(sources) == len(stems)
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    for stem in stems:
        encoded = base64.b64encode((figures_dir / f"{stem}.png").read_bytes()).decode()
        assert encoded in html, stem
    # the claims, the paper's parameters, then every table with rows (a table whose experiment
    # the fixture lacks, as T10, says so in a sentence)
    tables_dir = full_report.parent.parent / "tables"
    with_rows = [s for s in TABLES if "|" in (tables_dir / f"{s}.md").read_text()]
    assert len(with_rows) >= len(TABLES) - 1
    assert html.count("<table>") == 2 + len(with_rows)
    beyond = html.index("Beyond the paper (ours)")
    assert html.index("T6. Class-incremental") > beyond and html.index("T7. Our findings") > beyond
    assert html.index("F8. Class-incremental") > beyond > html.index("T1. Main results")


def test_markdown_references_every_figure_and_reads_numbers_from_the_tables(full_report):
    md = full_report.read_text()
    for stem in figure_names(DATASETS):
        assert f"](../figures/{stem}.png)" in md
    tables_dir = full_report.parent.parent / "tables"
    for stem in ("T1_main", "T2_claims", "T3_ablations", "T4_efficiency"):
        assert (tables_dir / f"{stem}.md").read_text() in md
    assert "{{" not in md and "{%" not in md
    assert "This is a reconstruction" in md
    # the headline sentence, from the fixture's seeds: mean of 97.0, 97.2 and 97.4
    assert "**MNIST:** the Memory Network reaches 97.20% test accuracy" in md
    t2 = pd.read_csv(tables_dir / "T2_claims.csv")
    counts = t2["verdict"].value_counts()
    assert f"{counts['reproduced']} reproduced" in md
    assert "| n_neurons | 500 |" in md  # the paper configuration recorded by the runs


def quick_copy(tmp_path_factory, tmp_path, full_report):
    """A writable copy of the quick tree with its tables, and figures borrowed from the full tree."""
    results = tmp_path / "results"
    shutil.copytree(quick_tree(tmp_path_factory), results)
    run_tables(results)
    shutil.copytree(full_report.parents[1] / "figures", results / "figures")
    return results


def test_report_changes_when_the_results_change(tmp_path_factory, tmp_path, full_report):
    results = at_paper_scale(quick_copy(tmp_path_factory, tmp_path, full_report))
    out = run_report(results, ["mnist"])
    assert "the Memory Network reaches 97.10% test accuracy" in out.read_text()
    summary = pd.read_csv(results / "tables" / "summary.csv")
    main = (summary.experiment == "main") & (summary.model == "memnet")
    summary.loc[main, "accuracy_mean"] = 0.8123
    summary.to_csv(results / "tables" / "summary.csv", index=False)
    run_tables(results)
    run_report(results, ["mnist"])
    text = out.read_text()
    assert "the Memory Network reaches 81.23% test accuracy" in text
    assert "**not reproduced** (MNIST): On MNIST the Memory Network reaches about 97%" in text


def test_a_missing_figure_or_table_is_a_clear_error(tmp_path_factory, tmp_path, full_report):
    results = quick_copy(tmp_path_factory, tmp_path, full_report)

    def context(tables, figures):
        return report.build_context(results / "tables" / "runs.csv", None, tables, figures,
                                    caption_files(), ["mnist"], results / "paper" / "replication.md")  # fmt: skip

    no_md = [p for p in table_files(results) if p.name != "T1_main.md"]
    with pytest.raises(FileNotFoundError, match="T1_main.md: not among the files given"):
        context(no_md, figure_files(results))
    no_png = [p for p in figure_files(results) if p.name != "F6_pareto.png"]
    with pytest.raises(FileNotFoundError, match="F6_pareto.png: figure missing"):
        context(table_files(results), no_png)
    (results / "figures" / "F6_pareto.png").unlink()  # given, but not there
    with pytest.raises(FileNotFoundError, match="F6_pareto.png: figure missing"):
        context(table_files(results), figure_files(results) + [results / "figures/F6_pareto.png"])


def test_the_report_reads_versions_from_the_run_file_given(tmp_path_factory, tmp_path, full_report):
    """A leftover run file that the old search of the runs directory would have read first."""
    results = quick_copy(tmp_path_factory, tmp_path, full_report)
    given = confusion_files(results)[0]
    leftover = results / "runs" / "a-leftover" / "main" / "memnet" / "paper" / "seed0.json"
    leftover.parent.mkdir(parents=True)
    run = json.loads(given.read_text())
    leftover.write_text(json.dumps({**run, "git_revision": "leftover", "versions": {"x": "9"}}))
    text = run_report(results, ["mnist"], metrics=given).read_text()
    assert f"Git revision of the runs: `{run['git_revision']}`" in text
    assert "leftover" not in text and "x 9" not in text


def test_every_table_and_figure_has_a_caption(repo):
    stems = ["T1_main", "T2_claims", "T3_ablations", "T4_efficiency", "F1_neurons", "F2_samples",
             "F3_ablations", "F4_memories", "F5_confusion", "F6_pareto", "replication",
             "notebooks", "workflow"]  # fmt: skip
    for stem in stems:
        text = (repo / "workflow" / "report" / f"{stem}.rst").read_text()
        assert len(text.split()) > 15, stem


# The parameters the pipeline's notebook rule passes to each notebook (report.smk, notebook_params)
NOTEBOOK_PARAMETERS = {"results": {"results_dir"}, "memories": {"model_path", "data_path"}}


def test_notebooks_are_committed_without_outputs_and_take_parameters(repo):
    rules = "".join(p.read_text() for p in (repo / "workflow/rules").glob("*.smk"))
    for name, parameters in NOTEBOOK_PARAMETERS.items():
        nb = json.loads((repo / "notebooks" / f"{name}.ipynb").read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), name
        tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
        assert len(tagged) == 1, name
        source = "".join(tagged[0]["source"])
        assigned = set(re.findall(r"^(\w+) = ", source, re.M))
        assert parameters <= assigned, name
        assert all(f'"{p}"' in rules for p in parameters), name


@pytest.mark.slow
def test_notebooks_run_top_to_bottom(tmp_path_factory, tmp_path):
    results = full_tree(tmp_path_factory)
    rendered(results, DATASETS)
    model = results / "models" / "mnist" / "main" / "memnet" / "paper" / "seed0.npz"
    names = ["results", "memories"] if model.exists() else ["results"]
    for name in names:
        out = tmp_path / f"{name}.ipynb"
        given = {"results_dir": results, "model_path": model, "data_path": results / "none.npz"}
        parameters = {k: str(v) for k, v in given.items() if k in NOTEBOOK_PARAMETERS[name]}
        report.run_notebook(REPO / "notebooks" / f"{name}.ipynb", out, parameters)
        executed = json.loads(out.read_text())
        errors = [o for c in executed["cells"] for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]  # fmt: skip
        assert not errors, name
        html = out.with_suffix(".html").read_text()
        assert "<html" in html and html.count("data:image/png;base64") >= 2, name


def test_report_rules_are_formatted(repo):
    proc = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", str(repo / "workflow/rules/report.smk")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_dry_run_schedules_the_report_rules(repo, dry_run):
    proc = dry_run()  # the default config (config/config.yaml), shared with test_pipeline
    stats = proc.stdout[proc.stdout.index("Job stats") :]
    stats = stats[: stats.index("total")]
    jobs = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}
    assert (jobs["tables"], jobs["figures"], jobs["replication_report"]) == (1, 1, 1)
    assert jobs["notebook"] == 2
    datasets = yaml.safe_load((repo / "config" / "config.yaml").read_text())["datasets"]
    assert jobs["run_saving_model"] == len(datasets) == 3  # one saved model per dataset
    assert "model" not in jobs  # the run that measures the model saves it: no second training


def test_report_names_its_config_and_scale_first(tmp_path_factory, tmp_path, full_report):
    results = quick_copy(tmp_path_factory, tmp_path, full_report)
    runs = pd.read_csv(results / "tables" / "runs.csv")
    main = runs[(runs.experiment == "main") & (runs.dataset == "mnist")]
    text = run_report(results, ["mnist"], config_file="config/quick.yaml").read_text()
    first = "\n".join(text.splitlines()[:5])
    assert "**Config:** `config/quick.yaml`" in first
    assert f"MNIST with {main.n_train.max():,} training and {main.n_test.max():,} test" in first
    assert f"{runs.seed.nunique()} seeds" in first
    assert "Warning" not in text  # one clean revision


def test_report_lists_every_code_revision_and_warns_of_uncommitted_code(
    tmp_path_factory, tmp_path, full_report
):
    results = quick_copy(tmp_path_factory, tmp_path, full_report)
    path = results / "tables" / "runs.csv"
    runs = pd.read_csv(path)
    runs["git_revision"], runs["git_dirty"], runs["source_hash"] = "a" * 40, False, "00aa"
    runs.to_csv(path, index=False)
    assert "Warning" not in run_report(results, ["mnist"]).read_text()

    runs.loc[runs.index[-1], ["git_revision", "git_dirty", "source_hash"]] = [
        "b" * 40,
        True,
        "11bb",
    ]
    runs.to_csv(path, index=False)
    text = run_report(results, ["mnist"]).read_text()
    assert "2 different versions of the code" in text and "uncommitted changes" in text
    assert f"commit `{'a' * 40}`, source 00aa" in text
    assert f"commit `{'b' * 40}` with uncommitted changes, source 11bb" in text
