"""Tables T1-T4 from a hand-made results tree: columns, values, and no cached or typed-in cell."""

from __future__ import annotations

import json
import math
import shutil

import fixtures_runs
import numpy as np
import pandas as pd
import pytest
import yaml
from fixtures_runs import (
    N_TEST,
    N_TRAIN,
    SEED_STEP,
    at_paper_scale,
    full_tree,
    model_files,
    quick_tree,
    run_tables,
    save_model,
)
from scipy import stats

from memnet.report import tables
from memnet.report.results import ANY, RUN_COLUMNS, SUMMARY_COLUMNS, load_summary, select

T1_COLUMNS = [
    "dataset", "model", "variant", "label", "n_seeds", "accuracy_mean", "accuracy_std",
    "accuracy_ci_low", "accuracy_ci_high", "paper_reported", "n_passes", "uses_backprop",
    "uses_weight_sharing", "train_seconds_mean", "infer_seconds_mean", "model_bytes_mean",
]  # fmt: skip
T2_COLUMNS = [
    "id", "claim", "kind", "source", "dataset", "metric", "reported", "tolerance", "comparison",
    "measured", "verdict", "detail",
]  # fmt: skip
T3_COLUMNS = [
    "dataset", "parameter", "value", "paper_value", "variant", "is_paper", "n_seeds",
    "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high", "diff_mean", "diff_ci_low",
    "diff_ci_high", "n_paired",
]  # fmt: skip
T4_COLUMNS = [
    "dataset", "model", "variant", "label", "n_train", "n_test", "train_seconds_mean",
    "infer_seconds_mean", "train_samples_per_second", "infer_samples_per_second",
    "peak_memory_bytes_mean", "model_bytes_mean",
]  # fmt: skip


@pytest.fixture(scope="module")
def full_tables(tmp_path_factory):
    return run_tables(full_tree(tmp_path_factory))


@pytest.fixture
def quick_results(tmp_path_factory):
    return quick_tree(tmp_path_factory)


def test_every_table_in_three_formats_with_the_expected_columns(full_tables):
    expected = {"T1_main": T1_COLUMNS, "T2_claims": T2_COLUMNS, "T3_ablations": T3_COLUMNS,
                "T4_efficiency": T4_COLUMNS, "T8_local_ablations": T3_COLUMNS}  # fmt: skip
    for stem, columns in expected.items():
        df = pd.read_csv(full_tables / f"{stem}.csv")
        assert list(df.columns) == columns, stem
        assert len(df) > 0, stem
        assert (full_tables / f"{stem}.md").read_text().startswith("| ")
        tex = (full_tables / f"{stem}.tex").read_text()
        for command in (r"\toprule", r"\midrule", r"\bottomrule", rf"\label{{tab:{stem}}}"):
            assert command in tex, (stem, command)


def test_t1_holds_the_seed_statistics_and_the_reported_value(full_tables):
    t1 = pd.read_csv(full_tables / "T1_main.csv")
    row = select(t1, "mnist", model="memnet").iloc[0]
    accs = 0.970 + SEED_STEP * np.arange(3)  # the fixture's formula for seeds 0, 1, 2
    half = stats.t.ppf(0.975, 2) * accs.std(ddof=1) / math.sqrt(3)
    assert row.accuracy_mean == pytest.approx(accs.mean())
    assert row.accuracy_std == pytest.approx(accs.std(ddof=1))
    assert row.accuracy_ci_low == pytest.approx(accs.mean() - half)
    assert row.paper_reported == 0.97
    assert (row.n_passes, row.uses_backprop, row.uses_weight_sharing) == (1, False, False)
    cnn = select(t1, "cifar10", model="cnn", variant="epochs10").iloc[0]
    assert (cnn.n_passes, cnn.uses_backprop, cnn.uses_weight_sharing) == (10, True, True)
    assert math.isnan(cnn.paper_reported)
    assert list(t1.dataset.unique()) == ["cifar10", "mnist"]  # alphabetical without a config
    assert list(select(t1, "mnist").model.unique()) == [
        "memnet",
        "local",
        "mlp",
        "cnn",
        "knn",
        "ncm",
    ]
    md = (full_tables / "T1_main.md").read_text()
    assert "| MNIST | Memory Network (paper) | 97.20 ± 0.20 |" in md
    assert "| CIFAR-10 | kNN (k1-l1) | 38.80 ± 0.20 |" in md


def test_changing_one_input_value_changes_the_matching_cell(quick_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(quick_results, results)
    before = pd.read_csv(run_tables(results) / "T1_main.csv")
    t4_before = pd.read_csv(results / "tables" / "T4_efficiency.csv")

    summary = pd.read_csv(results / "tables" / "summary.csv")
    knn = select(summary, experiment="main", model="knn", variant="k1-l2").index
    summary.loc[knn, "accuracy_mean"] = 0.5
    summary.to_csv(results / "tables" / "summary.csv", index=False)
    runs = pd.read_csv(results / "tables" / "runs.csv")
    ncm = select(runs, experiment="main", model="ncm", seed=0).index
    runs.loc[ncm, "n_test"] = 3 * N_TEST
    runs.to_csv(results / "tables" / "runs.csv", index=False)

    after = pd.read_csv(run_tables(results) / "T1_main.csv")
    changed = after.ne(before) & ~(after.isna() & before.isna())
    assert changed.to_numpy().sum() == 1
    assert after.loc[changed.any(axis=1), "variant"].item() == "k1-l2"
    assert after.loc[after.variant == "k1-l2", "accuracy_mean"].item() == 0.5
    assert "| MNIST | kNN (k1-l2) | 50.00 ± " in (results / "tables" / "T1_main.md").read_text()

    t4 = pd.read_csv(results / "tables" / "T4_efficiency.csv")
    row, old = select(t4, model="ncm").iloc[0], select(t4_before, model="ncm").iloc[0]
    per_run = N_TEST / (0.05 / 10)  # seed 0 infers in 0.005 s; so does seed 1
    assert old.infer_samples_per_second == pytest.approx(per_run)
    assert row.infer_samples_per_second == pytest.approx((3 * per_run + per_run) / 2)
    assert row.train_samples_per_second == pytest.approx(old.train_samples_per_second)


def test_t2_has_every_verdict_kind_on_the_quick_tree(quick_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(quick_results, results)
    t2 = pd.read_csv(run_tables(results) / "T2_claims.csv").set_index("id")
    # at the quick tree's scale (500 neurons, a few training images) the numeric MNIST claims are
    # not measurable, whatever the numbers say
    for claim in ("mnist-accuracy", "mnist-neurons"):
        assert t2.loc[claim, "verdict"] == "not measurable at this scale"
        assert "the paper's config (config/config.yaml) measures it" in t2.loc[claim, "detail"]
    assert "500 neurons (the claim: 10,000 or more)" in t2.loc["mnist-accuracy", "detail"]
    t2 = pd.read_csv(run_tables(at_paper_scale(results)) / "T2_claims.csv").set_index("id")
    assert t2.loc["mnist-accuracy", "verdict"] == "reproduced"  # 97.1% vs 97% +- 1
    assert t2.loc["mnist-neurons", "verdict"] == "not reproduced"  # 150 neurons, not 10,000+
    assert t2.loc["cifar10-accuracy", "verdict"] == "not measurable here"
    assert (
        "cifar10 is not among this run's datasets (mnist)" in t2.loc["cifar10-accuracy", "detail"]
    )
    assert t2.loc["little-data-mnist", "verdict"] == "reproduced"


def test_t3_paired_differences_match_the_fixture(full_tables):
    t3 = pd.read_csv(full_tables / "T3_ablations.csv", keep_default_na=False, na_values=[""])
    mnist = select(t3, "mnist").set_index("variant")
    assert mnist.loc["paper", "is_paper"]
    assert mnist.loc["distance-l1", "diff_mean"] == pytest.approx(-0.010)
    assert mnist.loc["distance-l1", ["parameter", "value", "paper_value"]].tolist() == [
        "distance", "l1", "l2",
    ]  # fmt: skip
    assert str(mnist.loc["k-3", "paper_value"]) == "1"
    assert mnist.loc["k-3", "n_paired"] == 3
    md = (full_tables / "T3_ablations.md").read_text()
    assert "| MNIST | distance | l1 (paper: l2) | 96.20 |" in md


def test_t8_pairs_each_local_ablation_with_the_default_variant(full_tables):
    t8 = pd.read_csv(full_tables / "T8_local_ablations.csv", keep_default_na=False, na_values=[""])
    mnist = select(t8, "mnist").set_index("variant")
    assert mnist.loc["default", "is_paper"]  # the reference row
    assert mnist.loc["scoring-vote", "diff_mean"] == pytest.approx(-0.003)
    assert mnist.loc["preprocess-none", "diff_mean"] == pytest.approx(-0.004)
    assert mnist.loc["preprocess-none", ["parameter", "value", "paper_value"]].tolist() == [
        "preprocess", "none", "deskew",
    ]  # fmt: skip
    assert set(select(t8, "mnist")["variant"]) == {"default", "scoring-vote", "preprocess-none"}
    md = (full_tables / "T8_local_ablations.md").read_text()
    assert "Δ vs default (pp)" in md and "none (default: deskew)" in md
    assert "the `default` variant" in md
    assert "paper" not in md  # the local model's ablations are ours, against its own default


def test_paired_interval_is_the_t_interval_of_the_seed_differences():
    accs = {"paper": [0.91, 0.91, 0.91], "distance-l1": [0.90, 0.92, 0.95]}
    runs, summary = [], []
    for variant, values in accs.items():
        for seed, acc in enumerate(values):
            runs.append({"dataset": "d", "experiment": "ablations", "model": "memnet",
                         "variant": variant, "x": np.nan, "seed": seed, "accuracy": acc,
                         "params": json.dumps({"distance": "l2"})})  # fmt: skip
        summary.append({"dataset": "d", "experiment": "ablations", "model": "memnet",
                        "variant": variant, "x": np.nan, "n_seeds": 3,
                        "accuracy_mean": np.mean(values), "accuracy_ci_low": 0.0,
                        "accuracy_ci_high": 1.0})  # fmt: skip
    t3 = tables.table_ablations(pd.DataFrame(summary), pd.DataFrame(runs))
    row = select(t3, variant="distance-l1").iloc[0]
    diffs = np.array([-0.01, 0.01, 0.04])
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3)
    assert row.diff_mean == pytest.approx(diffs.mean())
    assert row.diff_ci_low == pytest.approx(diffs.mean() - half)
    assert row.diff_ci_high == pytest.approx(diffs.mean() + half)


def test_t4_throughput_is_samples_over_seconds(full_tables):
    t4 = pd.read_csv(full_tables / "T4_efficiency.csv")
    memnet = select(t4, "mnist", model="memnet").iloc[0]
    # the fixture trains memnet in 2.0 * (1 + 0.01 * seed) seconds on N_TRAIN samples
    expected = np.mean([N_TRAIN / (2.0 * (1 + 0.01 * s)) for s in range(3)])
    assert memnet.train_samples_per_second == pytest.approx(expected)
    assert memnet.n_train == N_TRAIN


def test_tables_without_an_experiment_say_so():
    empty = pd.DataFrame(columns=SUMMARY_COLUMNS)
    t3 = tables.table_ablations(empty, pd.DataFrame(columns=RUN_COLUMNS))
    assert list(t3.columns) == T3_COLUMNS and t3.empty
    assert tables.NO_RESULTS in tables.to_markdown(tables.display_ablations(t3))
    tex = tables.to_latex(tables.display_ablations(t3), "T3", "T3_ablations")
    assert tables.NO_RESULTS in tex and r"\bottomrule" in tex


def test_markdown_rows_have_as_many_cells_as_the_header(full_tables):
    for stem in tables.TABLES:
        lines = (full_tables / f"{stem}.md").read_text().splitlines()
        widths = {line.replace("\\|", "").count("|") for line in lines}
        assert len(widths) == 1, stem


def test_latex_escapes_special_characters():
    display = pd.DataFrame({"95% CI_x": ["a & b", "≈97 ± 1", "#1 {x}"]})
    tex = tables.to_latex(display, "caption 100%", "lbl")
    assert r"95\% CI\_x" in tex
    assert r"a \& b" in tex and r"$\approx$97 $\pm$ 1" in tex and r"\#1 \{x\}" in tex
    assert r"\caption{caption 100\%}" in tex


def test_a_results_file_missing_a_column_gets_one_clear_error(tmp_path):
    path = tmp_path / "summary.csv"
    pd.DataFrame({"dataset": ["mnist"], "accuracy_mean": [0.9]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"summary.csv: missing columns \['experiment'"):
        load_summary(path)


def test_a_saved_model_left_on_disk_but_not_given_changes_nothing(quick_results, tmp_path):
    """A second saved model beside the given one, from a run that saw twice its training set: read,
    it would make the single-pass claim fail (the old search of the models directory read it)."""
    results = tmp_path / "results"
    shutil.copytree(quick_results, results)
    given = model_files(results)
    if not given:
        pytest.skip("no MemoryNetwork to save")
    before = pd.read_csv(
        run_tables(results, models=given, out=tmp_path / "before") / "T2_claims.csv"
    )
    single = before.set_index("id").loc["single-pass"]
    assert single.verdict == "reproduced" and "each of 1 saved models" in single.detail

    leftover = results / "models" / "mnist" / "main" / "memnet" / "paper" / "seed1.npz"
    save_model(leftover, "mnist", 1)
    # seed 0's metrics: its n_train is the training set the model saw once
    metrics = json.loads(next(p for p in given if p.suffix == ".json").read_text())
    leftover.with_suffix(".json").write_text(json.dumps({**metrics, "seed": 1, "n_train": 1}))
    assert len(model_files(results)) == 4
    after = run_tables(results, models=given, out=tmp_path / "after")
    for stem in tables.TABLES:
        for ext in ("csv", "md", "tex"):
            name = f"{stem}.{ext}"
            assert (after / name).read_text() == (tmp_path / "before" / name).read_text(), name
    # given, the leftover would fail the claim: the test can tell the two apart
    every = pd.read_csv(run_tables(results, out=tmp_path / "every") / "T2_claims.csv")
    assert every.set_index("id").loc["single-pass", "verdict"] == "not reproduced"


def test_t6_final_accuracy_forgetting_and_joint_match_the_fixture(full_tables):
    t6 = pd.read_csv(full_tables / "T6_incremental.csv")
    ours = t6[t6["source"] == "measured here"].set_index(["model", "variant"])
    seeds = np.arange(3)
    for (model, variant), (curve, forgets, *_) in fixtures_runs.INCREMENTAL.items():
        row = ours.loc[(model, variant)]
        assert row["final_mean"] == pytest.approx(np.mean(curve[-1] - 0.002 * seeds))
        assert row["forgetting_mean"] == pytest.approx(np.mean(forgets + 0.001 * seeds))
        joint = fixtures_runs.MAIN[(model, variant.split("-")[0] if model == "memnet" else variant)]
        assert row["joint_mean"] == pytest.approx(np.mean(joint[0]["mnist"] + 0.002 * seeds))
    published = t6[t6["model"] == "published"]
    anchors = yaml.safe_load((fixtures_runs.REPO / "paper/claims.yaml").read_text())["anchors"]
    anchors = [a for a in anchors if "model" not in a]  # a peer's anchor is T9's, not T6's
    assert len(published) == len(anchors) and published["source"].str.startswith("published").all()
    assert published["forgetting_mean"].isna().all()  # never mixed with our measurements


def test_t7_holds_only_our_findings_and_t2_only_the_papers(full_tables):
    doc = yaml.safe_load((fixtures_runs.REPO / "paper/claims.yaml").read_text())
    t2 = pd.read_csv(full_tables / "T2_claims.csv")
    t7 = pd.read_csv(full_tables / "T7_findings.csv")
    assert list(t2["id"]) == [c["id"] for c in doc["claims"]]
    assert list(t7["id"]) == [c["id"] for c in doc["findings"]]
    verdicts = t7.set_index("id")["verdict"]
    # the fixture's memnet ends 0.9 points below its joint accuracy and forgets 1.3 points (kNN 1.1);
    # the MLP forgets 98.6
    assert verdicts["incremental-memnet-near-joint"] == "reproduced"
    assert verdicts["incremental-memnet-forgets-like-a-memory"] == "reproduced"  # 1.3 vs 1.1
    assert verdicts["incremental-mlp-forgets"] == "reproduced"
    # the fixture's local/default reaches 99.2% on MNIST; the probes of its runs' settings pass
    for finding in ("local-mnist-99", "local-no-weight-sharing", "local-single-pass"):
        assert verdicts[finding] == "reproduced", t7.set_index("id").loc[finding, "detail"]
    assert "99.20% mean over 3 seeds" in t7.set_index("id").loc["local-mnist-99", "detail"]


def test_t7_local_accuracy_finding_fails_below_99_percent(quick_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(quick_results, results)
    summary = pd.read_csv(results / "tables" / "summary.csv")
    local = select(summary, experiment="main", model="local", variant="default").index
    summary.loc[local, "accuracy_mean"] = 0.9899
    summary.to_csv(results / "tables" / "summary.csv", index=False)
    t7 = pd.read_csv(run_tables(results) / "T7_findings.csv").set_index("id")
    assert t7.loc["local-mnist-99", "verdict"] == "not reproduced"
    assert "98.99%" in t7.loc["local-mnist-99", "detail"]


def test_t5_sets_accuracy_beside_stored_floats_along_each_memory_sweep(full_tables):
    t5 = pd.read_csv(full_tables / "T5_memory.csv")
    mnist = select(t5, "mnist", x=ANY)
    mean_seed = SEED_STEP * 1  # seeds 0, 1, 2
    memnet = select(mnist, model="memnet", experiment="neurons", x=ANY).sort_values("x")
    assert list(memnet["x"]) == sorted(fixtures_runs.NEURONS)
    assert list(memnet["stored_floats"]) == [784 * n for n in sorted(fixtures_runs.NEURONS)]
    expected = [0.970 + mean_seed + fixtures_runs.NEURONS[n] for n in sorted(fixtures_runs.NEURONS)]
    assert np.allclose(memnet["accuracy_mean"], expected)
    local = select(mnist, model="local", experiment="local_banks", x=ANY).sort_values("x")
    banks = sorted(fixtures_runs.LOCAL_BANKS)
    assert list(local["stored_floats"]) == [64 * 10 * n * (4 * 49 + 8) / 4 for n in banks]
    expected = [0.990 + mean_seed + fixtures_runs.LOCAL_BANKS[n] for n in banks]
    assert np.allclose(local["accuracy_mean"], expected)
    # the baselines at their main setting, the memory models only along their sweeps
    main = select(mnist, experiment="main")
    assert sorted(zip(main["model"], main["variant"], strict=True)) == sorted(
        (m, v) for (m, v), (accs, *_) in fixtures_runs.MAIN.items()
        if "mnist" in accs and m not in ("memnet", "local")
    )  # fmt: skip
    assert (main["stored_floats"] == 50_000 / 4).all()
    assert len(mnist) == len(memnet) + len(local) + len(main)
    md = (full_tables / "T5_memory.md").read_text()
    assert "| MNIST | Local Memory Network (ours) | 1,600 per bank | 52,224,000 | 99.20 |" in md
    assert "| MNIST | Memory Network | 1,000 neurons | 784,000 | 92.20 |" in md


def test_stand_in_data_gets_no_paper_figure_and_no_paper_verdict(tmp_path_factory, tmp_path):
    """cifar10 made from the synthetic archive (the rehearsal): its paper claims are not
    measurable and T1 shows no paper figure beside it; mnist, made from its published files,
    is judged as before."""
    from memnet import datasets

    results = full_tree(tmp_path_factory)
    x, y = np.zeros((2, 3, 32, 32), np.uint8), np.array([0, 1])
    files = {
        name: {n: f.sha256 for n, f in datasets.REGISTRY[name].files.items()}
        for name in ("cifar10-synthetic", "mnist")
    }
    cifar = datasets.write_npz(tmp_path / "cifar10.npz", "cifar10", x, y, x, y,
                               datasets.REGISTRY["cifar10"].classes, files["cifar10-synthetic"])  # fmt: skip
    mnist = datasets.write_npz(tmp_path / "mnist.npz", "mnist", x[:, :1, :28, :28], y,
                               x[:, :1, :28, :28], y, list("0123456789"), files["mnist"])  # fmt: skip
    out = tmp_path / "tables"
    fixtures_runs.memnet(
        "tables", "--summary", results / "tables" / "summary.csv",
        "--runs", results / "tables" / "runs.csv", "--claims", fixtures_runs.REPO / "paper" / "claims.yaml",
        "--models", *fixtures_runs.model_files(results), "--data", cifar, mnist, "--out", out,
    )  # fmt: skip
    t1 = pd.read_csv(out / "T1_main.csv")
    assert select(t1, "cifar10", model="memnet")["paper_reported"].isna().all()
    assert select(t1, "mnist", model="memnet").iloc[0].paper_reported == 0.97
    t2 = pd.read_csv(out / "T2_claims.csv").set_index("id")
    assert t2.loc["cifar10-accuracy", "verdict"] == "not measurable here"
    assert "stands in for cifar10" in t2.loc["cifar10-accuracy", "detail"]
    assert t2.loc["mnist-accuracy", "verdict"] != "not measurable here"


def test_no_finding_of_ours_is_tabled_as_the_papers(tmp_path_factory):
    """T1's paper column holds the paper's claims only, even when handed our findings."""
    from fixtures_runs import full_tree

    from memnet.report.claims import load_claims
    from memnet.report.results import load_summary
    from memnet.report.tables import table_main

    claims = load_claims(fixtures_runs.REPO / "paper" / "claims.yaml")
    findings = [c for c in claims if c.ours and c.metric == "accuracy" and "model" in c.select]
    assert findings  # the test needs a finding to be able to fail
    summary = load_summary(full_tree(tmp_path_factory) / "tables" / "summary.csv")
    template = summary[summary.experiment == "main"].iloc[[0]]
    added = [
        template.assign(dataset=c.dataset, model=c.select["model"], variant=c.select["variant"])
        for c in findings
    ]
    summary = pd.concat([summary, *added], ignore_index=True)
    t1 = table_main(summary, claims)  # every claim, findings included
    for c in findings:
        row = t1[(t1.model == c.select["model"]) & (t1.variant == c.select["variant"])]
        assert row["paper_reported"].isna().all(), c.id
