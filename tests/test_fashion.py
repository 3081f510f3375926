"""Fashion-MNIST, a dataset of the paper config beyond the paper: the quick DAG, end to end, on a
small subset of the canonical files from the mirror (one seed), and the report that keeps it apart
from the paper's datasets."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from conftest import REPO, find_mirror, snakemake

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SUBSET = {"n_train": 600, "n_test": 200}


@pytest.fixture(scope="module")
def fashion_run(tmp_path_factory, numba_cache):
    mirror = find_mirror()
    if mirror is None or not (mirror / "fashion-mnist").is_dir():
        pytest.skip(
            "no Fashion-MNIST in the mirror: set MEMNET_DATA_MIRROR to a directory with fashion-mnist/"
        )
    work = tmp_path_factory.mktemp("fashion")
    data = {"dir": "results/data", "mirror": str(mirror), "subset": {"fashion-mnist": SUBSET}}
    overrides = {
        "datasets": ["fashion-mnist"],
        "seeds": [0],
        "results": "results/fashion",
        "data": data,
        "experiments": {"incremental": {"only_datasets": ["fashion-mnist"]}},
    }
    config = ["--config", *(f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}"
                            for k, v in overrides.items())]  # fmt: skip
    snakemake(
        "--cores", "2", "--configfile", str(REPO / "config" / "quick.yaml"), *config, cwd=work
    )
    return work / "results" / "fashion"


def test_every_experiment_of_the_quick_dag_runs_on_fashion_mnist(fashion_run):
    runs = pd.read_csv(fashion_run / "tables" / "runs.csv")
    quick = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    assert set(runs["dataset"]) == {"fashion-mnist"}
    assert set(runs["experiment"]) == set(quick["experiments"])
    main = runs[runs["experiment"] == "main"]
    assert set(main["model"]) == set(quick["experiments"]["main"]["models"])
    assert (main["n_train"] == SUBSET["n_train"]).all() and (
        main["n_test"] == SUBSET["n_test"]
    ).all()
    # ten classes of clothes: every model is far above chance on 600 images
    assert (main["accuracy"] > 0.3).all()


def test_the_report_puts_fashion_mnist_beyond_the_paper(fashion_run):
    text = (fashion_run / "replication.md").read_text()
    paper_part, ours = text.split("## 6. Beyond the paper (ours)")
    assert "**Fashion-MNIST (ours, beyond the paper):** the Memory Network reaches" in paper_part
    assert "Rows of Fashion-MNIST in these tables are ours" in paper_part
    assert "Panels of Fashion-MNIST in these figures are ours" in paper_part
    assert "Datasets the paper does not study: Fashion-MNIST." in ours
    # the figures drawn for Fashion-MNIST alone, the paper's kinds included, are in section 6 only
    alone = {p.name for p in (fashion_run / "figures").glob("F*_fashion-mnist.png")}
    assert {"F3_ablations_fashion-mnist.png", "F4_memories_fashion-mnist.png"} <= alone
    for name in alone:
        assert name in ours and name not in paper_part
    # the paper's claims are on MNIST and CIFAR-10: none is checked on Fashion-MNIST
    claims = pd.read_csv(fashion_run / "tables" / "T2_claims.csv")
    of_a_dataset = claims.dropna(subset=["dataset"])
    assert set(of_a_dataset["dataset"]) == {"mnist", "cifar10"}
    assert (of_a_dataset["verdict"] == "not measurable here").all()
