"""A dataset declared only in a test config goes through the DAG's data rules, in each raw format.

Each fixture dataset is served from a mirror directory or from a local HTTP server. One format runs
the whole DAG (the runs, their table and the report); for the others, the target is the prepared
.npz (the data rules are what differs between formats), and the config's three models are trained
and tested on it in this process, with the steps that the run and tune jobs call.
"""

from __future__ import annotations

import functools
import http.server
import threading

import pandas as pd
import pytest
import yaml
from conftest import REPO, snakemake
from fixtures_data import make_fixture

from memnet import datasets

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def tiny_config(name: str, declaration: dict, mirror) -> dict:
    """One seed, three fast models, the fixture's whole (small) train and test sets."""
    resources = yaml.safe_load((REPO / "config/quick.yaml").read_text())["resources"]
    return {
        "results": f"results/{name}",
        "datasets": [name],
        "dataset_declarations": {name: declaration},
        "seeds": [0],
        "data": {"dir": "results/data", "mirror": str(mirror) if mirror else None},
        "memnet": {
            "n_neurons": 40,
            "distance": "l2",
            "threshold": "adaptive",
            "plasticity": "mean",
            "competition": "label",
            "voting": "channel",
            "k": 1,
            "beta": 0.01,
            "eta": 0.1,
        },
        "tuning": {"validation_fraction": 0.2, "seed": 0, "tau_scale": [1.0]},
        "baselines": {"knn": {"k1-l2": {"k": 1, "metric": "l2"}}, "ncm": {"default": {}}},
        "experiments": {
            "main": {"models": {"memnet": ["paper"], "knn": ["k1-l2"], "ncm": ["default"]}}
        },
        "threads": {"run": 1, "tune": 1},
        "resources": resources,
    }


@pytest.fixture
def http_dir(tmp_path):
    """A local HTTP server for one directory; yields (directory, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def runs_in_process(config: dict, npz) -> pd.DataFrame:
    """The rows of the config's runs on the prepared ``npz``, made as its tune and run jobs make
    them (memnet.pipeline: tune once, then each run with the tuned tau), without Snakemake."""
    from memnet.pipeline.config import validate
    from memnet.pipeline.execute import execute, load_data
    from memnet.pipeline.plan import paper_params, plan
    from memnet.pipeline.tune import tune, tuned_tau

    config = validate(config)
    data = load_data(npz, None)
    tuning = config["tuning"]
    threads = config["threads"]
    tuned = tune(
        data, paper_params(config), tau_scale=tuning["tau_scale"],
        validation_fraction=tuning["validation_fraction"], seed=tuning["seed"],
        threads=threads["tune"],
    )  # fmt: skip
    rows = []
    for seed in config["seeds"]:
        for run in plan(config):
            params = dict(run.params)
            if run.needs_tuning:
                params["tau"] = tuned_tau(tuned, params.get("distance", "l2"))
            rows.append(
                execute(
                    data=data,
                    dataset=run.dataset,
                    experiment=run.experiment,
                    model=run.model,
                    variant=run.variant,
                    params=params,
                    seed=seed,
                    threads=threads["run"],
                    x=run.x,
                    n_train=run.n_train,
                    family=run.family,
                )  # fmt: skip
            )
    return pd.DataFrame(rows)


# every format from a mirror; the download path, which is the same for every format, from HTTP once
@pytest.mark.parametrize(
    ("fmt", "source"),
    [("idx", "mirror"), ("cifar-python", "mirror"), ("npz", "mirror"), ("idx", "http")],
)
def test_declared_dataset_runs_end_to_end(tmp_path, http_dir, numba_cache, fmt, source):
    name = f"tiny-{fmt}"
    if source == "mirror":
        mirror = tmp_path / "mirror"
        declaration = make_fixture(fmt, mirror / name)  # <mirror>/<dataset>/<file>
    else:
        mirror = None
        root, base = http_dir
        declaration = make_fixture(fmt, root)
        declaration["urls"] = ["http://127.0.0.1:1/", base]  # a dead URL first, then the server
    config = tiny_config(name, declaration, mirror)
    configfile = tmp_path / "tiny.yaml"
    configfile.write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    work.mkdir()
    env = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    prepared = work / "results/data" / f"{name}.npz"  # data.dir of tiny_config
    # one format runs the whole DAG (runs, report and notebooks: class names and image shape come
    # from the declaration); the others stop at the prepared data, to keep the suite short
    whole = fmt == "cifar-python" and source == "mirror"
    targets = [] if whole else [str(prepared.relative_to(work))]
    snakemake(*targets, "--cores", "2", "--configfile", str(configfile), cwd=work, env=env)
    if whole:
        report = (work / f"results/{name}/replication.md").read_text()
        assert name in report or "Tiny" in report
        assert (work / f"results/{name}/notebooks/memories.html").stat().st_size > 10_000
        runs = pd.read_csv(work / f"results/{name}/tables/runs.csv")
    else:
        assert not (work / f"results/{name}/tables").exists()  # the data rules only
        runs = runs_in_process(config, prepared)

    assert sorted(runs["model"]) == ["knn", "memnet", "ncm"]
    assert (runs["dataset"] == name).all() and (runs["n_test"] == declaration["n_test"]).all()
    chance = 1 / len(declaration["classes"])
    assert (runs["accuracy"] > chance + 0.2).all(), runs[["model", "accuracy"]]
    info = datasets.read_info(prepared)
    assert info.classes == tuple(declaration["classes"])
    assert info.image_shape == tuple(declaration["image_shape"])
    raw = work / "results/data/raw" / name
    assert sorted(p.name for p in raw.iterdir()) == sorted(
        f["name"] for f in declaration["files"].values()
    )
