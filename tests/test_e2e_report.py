"""The quick run's products: every table, figure, the replication report, the executed notebooks,
and Snakemake's own report, each non-empty and well-formed."""

from __future__ import annotations

import base64
import json
import zipfile

import matplotlib.image as mpimg
import pandas as pd
import pytest
import yaml

from memnet.report.outputs import TABLES, figure_names
from memnet.report.results import MAIN_MEMNET, select

pytestmark = pytest.mark.e2e  # every test reads the session's quick run (conftest.quick_pipeline)


@pytest.fixture(scope="module")
def quick(repo, quick_run):
    return quick_run, yaml.safe_load((repo / "config/quick.yaml").read_text())


def test_every_table_parses_with_columns(quick):
    workdir, _ = quick
    for stem in TABLES:
        csv = pd.read_csv(workdir / f"results/quick/tables/{stem}.csv")
        assert len(csv) > 0 and len(csv.columns) > 2, stem
        md = (workdir / f"results/quick/tables/{stem}.md").read_text()
        assert md.count("\n|") >= len(csv), stem
        assert "\\toprule" in (workdir / f"results/quick/tables/{stem}.tex").read_text(), stem
    t1 = pd.read_csv(workdir / "results/quick/tables/T1_main.csv")
    config = quick[1]
    main = config["experiments"]["main"]["models"]
    expected = sum(applies(config, model, variant, dataset) for dataset in config["datasets"]
                   for model, variants in main.items() for variant in variants)  # fmt: skip
    assert len(t1) == expected


def applies(config, model, variant, dataset) -> bool:
    """Whether the config's entry of this variant runs on ``dataset`` (its only_datasets, if any)."""
    for entries in (config.get(model), config.get("baselines", {}).get(model)):
        if isinstance(entries, dict) and isinstance(entries.get(variant), dict):
            return dataset in entries[variant].get("only_datasets", [dataset])
    return True


def test_every_figure_is_a_real_image(quick):
    workdir, config = quick
    for stem in figure_names(config["datasets"]):
        png = mpimg.imread(workdir / f"results/quick/figures/{stem}.png")
        height, width = png.shape[:2]
        assert width >= 600 and height >= 300, stem
        assert png.std() > 0.01, f"{stem} is blank"
        assert (workdir / f"results/quick/figures/{stem}.pdf").read_bytes().startswith(b"%PDF"), (
            stem
        )


def test_replication_report_embeds_every_figure_and_table(quick):
    workdir, config = quick
    html = (workdir / "results/quick/replication.html").read_text()
    for stem in figure_names(config["datasets"]):
        png = (workdir / f"results/quick/figures/{stem}.png").read_bytes()
        assert base64.b64encode(png).decode() in html, stem
    md = (workdir / "results/quick/replication.md").read_text()
    for stem in TABLES:
        assert (workdir / f"results/quick/tables/{stem}.md").read_text().strip() in md, stem
    runs = pd.read_csv(workdir / "results/quick/tables/runs.csv")
    paper = select(runs, **MAIN_MEMNET)
    assert f"{100 * paper.accuracy.mean():.2f}%" in md  # the headline number, from the runs


def test_notebooks_ran_without_errors(quick):
    workdir, _ = quick
    for name in ("results", "memories"):
        nb = json.loads((workdir / f"results/quick/notebooks/{name}.ipynb").read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(c.get("execution_count") for c in code), name
        outputs = [o for c in code for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], name
        assert any(o.get("output_type") in ("display_data", "execute_result") for o in outputs)
        assert (workdir / f"results/quick/notebooks/{name}.html").stat().st_size > 10_000


def test_snakemake_report_packs_every_figure(quick_pipeline, quick, tmp_path):
    workdir, config = quick
    zip_path = tmp_path / "report.zip"
    quick_pipeline.snakemake(
        "--report", str(zip_path), "--configfile", str(quick_pipeline.configfile)
    )
    names = zipfile.ZipFile(zip_path).namelist()
    for stem in figure_names(config["datasets"]):
        assert any(n.endswith(f"{stem}.png") for n in names), stem
    assert any(n.endswith("report.html") for n in names)


def test_review_notebook_names_its_config_and_shows_each_models_mistakes(quick_pipeline, quick):
    workdir, config = quick
    nb = json.loads((workdir / "results/quick/notebooks/results.ipynb").read_text())
    cells = {c["id"]: c for c in nb["cells"]}

    def text(cell_id):
        return "".join("".join(o.get("text", "")) for o in cells[cell_id].get("outputs", []))

    assert f"Config: {quick_pipeline.configfile}" in text("results-2")
    # the review: a confusion matrix figure and a gallery per dataset, drawn from real runs
    images = [o for o in cells["results-15"]["outputs"] if "image/png" in o.get("data", {})]
    assert len(images) == 2 * len(config["datasets"]), text("results-15")
    assert "timing outliers" in text("results-17")
