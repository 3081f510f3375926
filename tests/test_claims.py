"""Verdicts of the paper's claims on hand-made results: reproduced, not reproduced, not measurable."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures_runs import save_model

from memnet.report import claims as C

ACCURACY = C.Claim(
    id="acc", claim="about 97%", source="abstract", kind="numeric", dataset="mnist",
    select={"experiment": "main", "model": "memnet", "variant": "paper"},
    metric="accuracy", reported=0.97, tolerance=0.01,
)  # fmt: skip


def summary_row(dataset="mnist", experiment="main", model="memnet", variant="paper", x=math.nan,
                acc=0.97, seconds=1.0, backprop=False, n_seeds=3) -> dict:  # fmt: skip
    return {
        "dataset": dataset, "experiment": experiment, "model": model, "variant": variant, "x": x,
        "n_seeds": n_seeds, "accuracy_mean": acc, "accuracy_std": 0.001,
        "accuracy_ci_low": acc - 0.002, "accuracy_ci_high": acc + 0.002,
        "train_seconds_mean": seconds, "uses_backprop": backprop,
    }  # fmt: skip


def run_row(dataset="mnist", experiment="main", model="memnet", variant="paper", seed=0,
            passes=1, backprop=False, sharing=False, n_born=20000, n_train=60000) -> dict:  # fmt: skip
    return {
        "dataset": dataset, "experiment": experiment, "model": model, "variant": variant,
        "x": math.nan, "seed": seed, "n_passes": passes, "uses_backprop": backprop,
        "uses_weight_sharing": sharing, "n_born": n_born, "n_train": n_train,
    }  # fmt: skip


def evidence(summary_rows, run_rows, **kw) -> C.Evidence:
    return C.Evidence(summary=pd.DataFrame(summary_rows), runs=pd.DataFrame(run_rows), **kw)


def test_numeric_claim_within_tolerance_is_reproduced():
    v = C.evaluate(ACCURACY, evidence([summary_row(acc=0.9625)], [run_row()]))
    assert v.verdict == C.REPRODUCED
    assert v.measured == pytest.approx(0.9625)
    assert "96.25%" in v.detail and "3 seeds" in v.detail


def test_numeric_claim_outside_tolerance_is_not_reproduced():
    v = C.evaluate(ACCURACY, evidence([summary_row(acc=0.955)], [run_row()]))
    assert v.verdict == C.NOT_REPRODUCED
    assert "95.50%" in v.detail


@pytest.mark.parametrize(
    ("comparison", "measured", "expected"),
    [
        ("at_least", 0.99, C.REPRODUCED),  # above the claim is fine for "at least"
        ("at_least", 0.955, C.NOT_REPRODUCED),
        ("within", 0.99, C.NOT_REPRODUCED),  # 2 points off: outside a 1-point tolerance
        ("at_most", 0.95, C.REPRODUCED),
        ("at_most", 0.985, C.NOT_REPRODUCED),
    ],
)
def test_comparisons(comparison, measured, expected):
    claim = C.Claim(**{**ACCURACY.__dict__, "comparison": comparison})
    assert C.evaluate(claim, evidence([summary_row(acc=measured)], [run_row()])).verdict == expected


def test_claim_on_a_dataset_the_run_lacks_is_not_measurable_with_the_reason():
    claim = C.Claim(**{**ACCURACY.__dict__, "dataset": "cifar10"})
    v = C.evaluate(claim, evidence([summary_row()], [run_row()]))
    assert v.verdict == C.NOT_MEASURABLE
    assert v.measured is None
    assert v.detail == "cifar10 is not among this run's datasets (mnist)"


def test_paper_claim_on_stand_in_data_is_not_measurable_but_our_findings_are():
    """A synthetic stand-in for a dataset (the CIFAR-10 rehearsal) says nothing of the paper."""
    why = "this run's mnist was not made from the published files of mnist"
    ev = evidence([summary_row(acc=0.97)], [run_row()], stand_ins={"mnist": why})
    v = C.evaluate(ACCURACY, ev)
    assert v.verdict == C.NOT_MEASURABLE and v.detail == why and v.measured is None
    ours = C.Claim(**{**ACCURACY.__dict__, "ours": True})
    assert C.evaluate(ours, ev).verdict == C.REPRODUCED


def test_claim_whose_setting_did_not_run_is_not_measurable():
    only_knn = [summary_row(model="knn", variant="k1-l2")]
    v = C.evaluate(ACCURACY, evidence(only_knn, [run_row(model="knn", variant="k1-l2")]))
    assert v.verdict == C.NOT_MEASURABLE
    assert "main/memnet/paper" in v.detail


def test_metric_outside_summary_is_the_mean_over_runs():
    claim = C.Claim(
        id="n", claim="tens of thousands of neurons", source="abstract", kind="numeric",
        dataset="mnist", select=dict(ACCURACY.select), metric="n_born", reported=10000,
        comparison="at_least",
    )  # fmt: skip
    runs = [run_row(seed=0, n_born=9000), run_row(seed=1, n_born=12000)]  # mean 10500
    v = C.evaluate(claim, evidence([summary_row()], runs))
    assert (v.verdict, v.measured) == (C.REPRODUCED, 10500)
    runs = [run_row(seed=0, n_born=9000), run_row(seed=1, n_born=10000)]  # mean 9500
    assert C.evaluate(claim, evidence([summary_row()], runs)).verdict == C.NOT_REPRODUCED


def structural(check: str, dataset: str | None = None) -> C.Claim:
    return C.Claim(id=check, claim=check, source="abstract", kind="structural", dataset=dataset,
                   check=check, evidence="tests/test_model.py")  # fmt: skip


def test_single_pass_from_the_runs():
    ev = evidence([summary_row()], [run_row(seed=0), run_row(seed=1)])
    v = C.evaluate(structural("single_pass"), ev)
    assert v.verdict == C.REPRODUCED
    assert "2 memnet runs" in v.detail and "tests/test_model.py" in v.detail
    ev = evidence([summary_row()], [run_row(seed=0), run_row(seed=1, passes=2)])
    v = C.evaluate(structural("single_pass"), ev)
    assert v.verdict == C.NOT_REPRODUCED
    assert "n_passes=2" in v.detail


def test_single_pass_reads_the_saved_models(tmp_path):
    pytest.importorskip("memnet.models.memory.network")
    models = tmp_path / "models"
    path = save_model(models / "mnist" / "main" / "memnet" / "paper" / "seed0.npz", "mnist", 0)
    from memnet.models.memory.network import MemoryNetwork

    n_seen = MemoryNetwork.load(path).n_seen_
    ok = evidence([summary_row()], [run_row(n_train=n_seen)], models=[path])
    v = C.evaluate(structural("single_pass"), ok)
    assert v.verdict == C.REPRODUCED
    assert "each of 1 saved models saw exactly its n_train samples" in v.detail
    # a model that saw twice its training set (two passes) must fail the check
    twice = evidence([summary_row()], [run_row(n_train=n_seen // 2)], models=[path])
    v = C.evaluate(structural("single_pass"), twice)
    assert v.verdict == C.NOT_REPRODUCED
    assert f"saw {n_seen} samples" in v.detail


def test_no_backprop_fails_on_a_recorded_flag_and_on_an_autograd_import(tmp_path):
    clean = tmp_path / "model.py"
    clean.write_text("import numpy as np\n\ndef fit(x):\n    return np.mean(x)\n")
    ok = evidence([summary_row()], [run_row()], model_source=clean)
    assert C.evaluate(structural("no_backprop"), ok).verdict == C.REPRODUCED

    flagged = evidence([summary_row()], [run_row(backprop=True)], model_source=clean)
    assert C.evaluate(structural("no_backprop"), flagged).verdict == C.NOT_REPRODUCED

    torchy = tmp_path / "torchy.py"
    torchy.write_text("import torch\n\ndef fit(loss):\n    loss.backward()\n")
    v = C.evaluate(structural("no_backprop"), evidence([], [run_row()], model_source=torchy))
    assert v.verdict == C.NOT_REPRODUCED
    assert "torch" in v.detail and "backward" in v.detail


def test_source_scan_follows_memnet_imports(tmp_path):
    (tmp_path / "model.py").write_text("from memnet import helper\n")
    (tmp_path / "helper.py").write_text("from scipy.signal import convolve2d\n")
    sources = C.model_sources(tmp_path / "model.py")
    assert [p.name for p in sources] == ["model.py", "helper.py"]
    ev = evidence([summary_row()], [run_row()], model_source=tmp_path / "model.py")
    v = C.evaluate(structural("no_weight_sharing"), ev)
    assert v.verdict == C.NOT_REPRODUCED
    assert "helper.py uses" in v.detail and "convolve2d" in v.detail


def test_the_real_model_source_passes_the_scans():
    if not C.model_sources():
        pytest.skip("memnet.model is not there yet")
    ev = evidence([summary_row()], [run_row()])
    for check in ("no_backprop", "no_weight_sharing"):
        v = C.evaluate(structural(check), ev)
        assert v.verdict == C.REPRODUCED, v.detail
        assert "model.py" in v.detail


def test_structural_claims_without_memnet_runs_are_not_measurable():
    ev = evidence([summary_row(model="knn")], [run_row(model="knn")])
    for check in ("single_pass", "no_backprop", "no_weight_sharing"):
        assert C.evaluate(structural(check), ev).verdict == C.NOT_MEASURABLE


def test_faster_than_backprop_compares_with_the_fastest_backprop_baseline():
    rows = [
        summary_row(seconds=3.0),
        summary_row(model="mlp", variant="epochs1", seconds=4.0, backprop=True),
        summary_row(model="cnn", variant="epochs1", seconds=9.0, backprop=True),
        summary_row(model="knn", variant="k1-l2", seconds=0.1),  # not backprop: ignored
        summary_row(model="krotov_hopfield", variant="h", seconds=0.5, backprop=True),  # a peer
    ]
    v = C.evaluate(structural("faster_than_backprop", "mnist"), evidence(rows, [run_row()]))
    assert (v.verdict, v.measured) == (C.REPRODUCED, 3.0)
    assert "mlp/epochs1" in v.detail
    rows[0] = summary_row(seconds=5.0)
    v = C.evaluate(structural("faster_than_backprop", "mnist"), evidence(rows, [run_row()]))
    assert v.verdict == C.NOT_REPRODUCED
    v = C.evaluate(structural("faster_than_backprop", "mnist"), evidence(rows[:1], [run_row()]))
    assert v.verdict == C.NOT_MEASURABLE


def test_little_data_uses_the_smallest_common_training_set():
    def at(n, model, acc, backprop=False):
        return summary_row(experiment="samples", model=model, variant="v", x=float(n), acc=acc,
                           backprop=backprop)  # fmt: skip

    rows = [at(10, "memnet", 0.5), at(100, "memnet", 0.7), at(10, "mlp", 0.3, True),
            at(100, "mlp", 0.8, True), at(10, "knn", 0.6),
            at(10, "krotov_hopfield", 0.9, True)]  # a peer, not a backprop baseline: ignored  # fmt: skip
    v = C.evaluate(structural("little_data", "mnist"), evidence(rows, [run_row()]))
    assert (v.verdict, v.measured) == (C.REPRODUCED, 0.5)
    assert "at 10 training samples" in v.detail
    rows[2] = at(10, "mlp", 0.55, True)
    v = C.evaluate(structural("little_data", "mnist"), evidence(rows, [run_row()]))
    assert v.verdict == C.NOT_REPRODUCED
    no_sweep = evidence([summary_row()], [run_row()])
    assert C.evaluate(structural("little_data", "mnist"), no_sweep).verdict == C.NOT_MEASURABLE


def test_the_repository_claims_load_and_cover_the_paper(repo: Path):
    claims = C.load_claims(repo / "paper" / "claims.yaml")
    ids = {c.id for c in claims}
    assert {"mnist-accuracy", "cifar10-accuracy", "single-pass", "no-backprop"} <= ids
    kinds = {c.kind for c in claims}
    assert kinds == {"numeric", "structural"}
    by_id = {c.id: c for c in claims}
    assert by_id["mnist-accuracy"].reported == 0.97
    assert by_id["cifar10-accuracy"].reported == 0.40


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("claims: []\n", "top-level 'claims:' list"),
        ("claims:\n  - {id: a, claim: x, source: s, kind: guess}\n", "kind must be one of"),
        ("claims:\n  - {id: a, claim: x, source: s, kind: structural, check: nope}\n",
         "check must be one of"),
        ("claims:\n  - {id: a, claim: x, source: s, kind: numeric, metric: accuracy}\n",
         "needs 'metric' and 'reported'"),
        ("claims:\n  - {id: a, claim: x, source: s, kind: numeric, colour: red}\n",
         "unexpected keyword argument 'colour'"),
        ("claims:\n  - {id: a, claim: x, source: s, kind: structural, check: single_pass}\n"
         "  - {id: a, claim: y, source: s, kind: structural, check: single_pass}\n",
         "duplicate id"),
    ],
)  # fmt: skip
def test_bad_claims_files_get_one_clear_error(tmp_path, text, message):
    path = tmp_path / "claims.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        C.load_claims(path)


def test_every_claim_evidence_names_an_existing_test(repo):
    import yaml

    doc = yaml.safe_load((repo / "paper/claims.yaml").read_text())
    for claim in doc["claims"] + doc["findings"]:
        evidence = claim.get("evidence")
        if not evidence:
            continue
        path, _, name = evidence.partition("::")
        assert (repo / path).is_file(), evidence
        assert f"def {name}(" in (repo / path).read_text(), evidence


@pytest.mark.parametrize(
    ("forgetting", "verdict"),
    [(0.06, C.REPRODUCED), (0.079, C.REPRODUCED), (0.09, C.NOT_REPRODUCED)],
)
def test_close_to_reference_compares_a_metric_with_another_rows(forgetting, verdict):
    claim = C.Claim(id="f", claim="c", source="ours", kind="structural", dataset="mnist",
                    check="close_to_reference", metric="forgetting", tolerance=0.03,
                    comparison="at_most", ours=True,
                    select={"experiment": "incremental", "model": "memnet", "variant": "paper-known"},
                    reference={"experiment": "incremental", "model": "knn", "variant": "k1-l2"})  # fmt: skip
    rows = [
        {
            **summary_row(experiment="incremental", variant="paper-known"),
            "forgetting_mean": forgetting,
        },
        {
            **summary_row(experiment="incremental", model="knn", variant="k1-l2"),
            "forgetting_mean": 0.05,
        },
    ]
    v = C.evaluate(claim, evidence(rows, [run_row()]))
    assert v.verdict == verdict and v.measured == pytest.approx(forgetting - 0.05)
    joint = C.Claim(id="j", claim="c", source="ours", kind="structural", dataset="mnist",
                    check="close_to_reference", tolerance=0.01,
                    select={"experiment": "incremental", "model": "memnet", "variant": "paper-known"},
                    reference={"experiment": "main", "model": "memnet", "variant": "paper"})  # fmt: skip
    rows.append(summary_row(acc=0.975))
    assert C.evaluate(joint, evidence(rows, [run_row()])).verdict == C.REPRODUCED  # 0.97 vs 0.975
    rows[-1] = summary_row(acc=0.99)
    assert C.evaluate(joint, evidence(rows, [run_row()])).verdict == C.NOT_REPRODUCED


# ---------------------------------------------------------------------------------------------
# The locally connected model (ours): checks that probe its structure

LOCAL_PARAMS = '{"n_per_bank": 1600, "patch": 7, "preprocess": "deskew", "stride": 3}'


def local_rows(params=LOCAL_PARAMS, **kw) -> list[dict]:
    return [{**run_row(model="local", variant="default", n_born=None, **kw), "params": params}]


def tied_model():
    """A locally connected model whose locations all end up holding location 0's memories, as
    tied (shared) weights would."""
    from memnet.models.memory.local import LocalMemoryNetwork

    class Tied(LocalMemoryNetwork):
        def fit(self, X, y):
            super().fit(X, y)
            for sc in self._scales:
                sc.mem[:] = sc.mem[0]
            return self

    return Tied


def test_local_no_weight_sharing_on_the_real_model_and_on_tied_memories():
    pytest.importorskip("memnet.models.memory.local")
    ev = evidence([], local_rows())
    v = C.evaluate(structural("local_no_weight_sharing"), ev)
    assert v.verdict == C.REPRODUCED, v.detail
    assert "local.py" in v.detail and "64 locations" in v.detail
    tied = evidence([], local_rows(), local_model=tied_model())
    v = C.evaluate(structural("local_no_weight_sharing"), tied)
    assert v.verdict == C.NOT_REPRODUCED
    assert "every location holds the same memories" in v.detail
    flagged = evidence([], local_rows(sharing=True))
    v = C.evaluate(structural("local_no_weight_sharing"), flagged)
    assert v.verdict == C.NOT_REPRODUCED and "1 local run(s) record" in v.detail


def test_local_no_weight_sharing_sees_distances_read_across_locations():
    from memnet.models.memory.local import LocalMemoryNetwork

    class Leaky(LocalMemoryNetwork):
        """Every location's distances also read location 0's memories."""

        def _location_distances(self, Xp, sc):
            D = super()._location_distances(Xp, sc)
            return D + float(sc.mem[0].sum())

    v = C.evaluate(structural("local_no_weight_sharing"),
                   evidence([], local_rows(), local_model=Leaky))  # fmt: skip
    assert v.verdict == C.NOT_REPRODUCED
    assert "changed other locations" in v.detail


def test_local_single_pass_on_the_real_model_and_on_two_passes():
    from memnet.models.memory.local import LocalMemoryNetwork

    class TwoPasses(LocalMemoryNetwork):
        def fit(self, X, y):
            super().fit(X, y)
            self._learn(self._transform(X), y, np.arange(len(X)))
            return self

    # every parameter set of the runs is probed: a multi-scale ablation too
    two_scales = '{"n_per_bank": 50, "patch": [7, 11], "stride": [3, 4]}'
    runs = local_rows() + local_rows(params=two_scales)
    v = C.evaluate(structural("local_single_pass"), evidence([], runs))
    assert v.verdict == C.REPRODUCED, v.detail
    assert "2 probe fits" in v.detail and "20 samples once" in v.detail
    v = C.evaluate(structural("local_single_pass"), evidence([], runs, local_model=TwoPasses))
    assert v.verdict == C.NOT_REPRODUCED and "other than once" in v.detail
    v = C.evaluate(structural("local_single_pass"), evidence([], local_rows(passes=2)))
    assert v.verdict == C.NOT_REPRODUCED


def test_local_checks_without_local_runs_are_not_measurable():
    ev = evidence([summary_row()], [run_row()])
    for check in ("local_no_weight_sharing", "local_single_pass"):
        assert C.evaluate(structural(check), ev).verdict == C.NOT_MEASURABLE


# ---- the hierarchical model's findings (ours): its layer 1 is probed as the local model is


def hierarchy_claim(check: str) -> C.Claim:
    select = {"model": "hierarchy", "variant": "default"}
    return C.Claim(id=check, claim=check, source="ours", kind="structural", dataset=None,
                   check=check, select=select, ours=True)  # fmt: skip


def hierarchy_rows(**kw) -> list[dict]:
    params = '{"n_per_bank": 50, "patch": 7, "stride": 3, "block": 50}'
    return [{**run_row(model="hierarchy", variant="default", n_born=None, **kw), "params": params}]


def test_hierarchy_single_pass_on_the_real_model_and_on_a_layer2_that_sees_twice():
    from memnet.models.memory.hierarchy import HierarchicalMemoryNetwork

    class TwiceToLayer2(HierarchicalMemoryNetwork):
        def _learn_readout(self, F, y):
            super()._learn_readout(F, y)
            super()._learn_readout(F, y)

    claim = hierarchy_claim("local_single_pass")
    v = C.evaluate(claim, evidence([], hierarchy_rows()))
    assert v.verdict == C.REPRODUCED, v.detail
    v = C.evaluate(claim, evidence([], hierarchy_rows(), local_model=TwiceToLayer2))
    assert v.verdict == C.NOT_REPRODUCED and "layer 2" in v.detail
    # the two-pass ablation is not the default: its runs are not the finding's
    two_pass = [{**r, "variant": "schedule-two-pass", "n_passes": 2} for r in hierarchy_rows()]
    assert C.evaluate(claim, evidence([], hierarchy_rows() + two_pass)).verdict == C.REPRODUCED
    v = C.evaluate(claim, evidence([], hierarchy_rows(passes=2)))
    assert v.verdict == C.NOT_REPRODUCED


def test_hierarchy_no_weight_sharing_on_the_real_model_and_on_tied_layer1_memories():
    from memnet.models.memory.hierarchy import HierarchicalMemoryNetwork

    class Tied(HierarchicalMemoryNetwork):
        def fit(self, X, y):
            super().fit(X, y)
            for sc in self._layer1._scales:
                sc.mem[:] = sc.mem[0]
            return self

    claim = hierarchy_claim("local_no_weight_sharing")
    v = C.evaluate(claim, evidence([], hierarchy_rows()))
    assert v.verdict == C.REPRODUCED, v.detail
    assert "hierarchy.py" in v.detail
    v = C.evaluate(claim, evidence([], hierarchy_rows(), local_model=Tied))
    assert v.verdict == C.NOT_REPRODUCED and "every location holds the same memories" in v.detail


@pytest.mark.parametrize("finding, dataset, variant", [("hierarchy-mnist-99.3", "mnist", "default"),
                                              ("hierarchy-fashion-90", "fashion-mnist", "plain")])  # fmt: skip
def test_hierarchy_accuracy_findings_fail_a_model_below_them(repo, finding, dataset, variant):
    claim = next(c for c in C.load_claims(repo / "paper" / "claims.yaml") if c.id == finding)
    rows = lambda acc: evidence(  # noqa: E731
        [summary_row(dataset, model="hierarchy", variant=variant, acc=acc)],
        [{**run_row(dataset, model="hierarchy", variant=variant), "params": "{}"}],
    )
    assert C.evaluate(claim, rows(claim.reported + 0.001)).verdict == C.REPRODUCED
    assert C.evaluate(claim, rows(claim.reported - 0.001)).verdict == C.NOT_REPRODUCED
