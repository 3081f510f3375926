"""The `memnet` command: a run writes one complete metrics file, or nothing and one clear error."""

import json

import numpy as np
import pytest
from fixtures_data import tiny_prepared_npz

from memnet import cli, datasets
from memnet.models.memory.network import MemoryNetwork
from memnet.report.aggregate import RUN_COLUMNS


@pytest.fixture
def data_npz(tmp_path):
    return tiny_prepared_npz(tmp_path / "tiny.npz", n_train=200, n_test=60)


def run(*args):
    return cli.main(["run", *map(str, args)])


def test_run_writes_every_metric_and_the_model(data_npz, tmp_path):
    params = {"n_neurons": 50, "tau": 5.0}
    out, model_out = tmp_path / "m.json", tmp_path / "model.npz"
    assert run("--data", data_npz, "--model", "memnet", "--params", json.dumps(params),
               "--seed", 3, "--out", out, "--model-out", model_out) == 0  # fmt: skip
    metrics = json.loads(out.read_text())
    assert set(RUN_COLUMNS) <= set(metrics) and {"confusion", "versions"} <= set(metrics)

    data = datasets.load(data_npz)
    expected = MemoryNetwork(**params, random_state=3).fit(data.X_train, data.y_train)
    y_pred = expected.predict(data.X_test)
    assert metrics["accuracy"] == pytest.approx(np.mean(y_pred == data.y_test))
    confusion = np.array(metrics["confusion"])
    assert confusion.sum() == len(data.y_test) and np.trace(confusion) == np.sum(
        y_pred == data.y_test
    )
    assert metrics["n_born"] == expected.n_born_ == sum(metrics["births_per_class"])
    assert np.array_equal(MemoryNetwork.load(model_out).memories_, expected.memories_)


def test_bad_parameters_fail_with_one_message_and_no_file(data_npz, tmp_path, capsys):
    out = tmp_path / "m.json"
    code = run("--data", data_npz, "--model", "memnet", "--params", '{"n_neurons": 0}',
               "--seed", 0, "--out", out)  # fmt: skip
    assert code == 2 and not out.exists()
    assert "n_neurons" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.part"))


def test_unknown_model_and_bad_json_are_refused(data_npz, tmp_path, capsys):
    assert run("--data", data_npz, "--model", "svm", "--seed", 0, "--out", tmp_path / "x.json") == 2
    assert "unknown model 'svm'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("--data", data_npz, "--model", "knn", "--params", "{k: 1", "--seed", 0, "--out", "x")
    assert "not valid JSON" in capsys.readouterr().err


def test_missing_data_file_is_named(tmp_path, capsys):
    code = run("--data", tmp_path / "none.npz", "--model", "ncm", "--seed", 0,
               "--out", tmp_path / "x.json")  # fmt: skip
    assert code == 2 and "none.npz" in capsys.readouterr().err
