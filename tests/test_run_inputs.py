"""`memnet run` on data that is not what it says: a user's raw arrays, or another dataset."""

import numpy as np
import pytest
from fixtures_data import tiny_prepared_npz

from memnet import cli
from memnet.datasets import load


@pytest.fixture
def data_npz(tmp_path):
    return tiny_prepared_npz(tmp_path / "tiny.npz", n_train=200, n_test=60)


def run(data, out, *extra):
    return cli.main(
        ["run", "--model", "ncm", "--seed", "0", "--data", str(data), "--out", str(out), *extra]
    )


def test_raw_arrays_are_sent_to_prepare_not_deleted(tmp_path, capsys):
    raw = tmp_path / "mine.npz"
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (10, 1, 8, 8), dtype=np.uint8)
    np.savez(raw, x_train=x, y_train=np.arange(10) % 2, x_test=x, y_test=np.arange(10) % 2)
    out = tmp_path / "out.json"
    assert run(raw, out) == 2 and not out.exists()
    err = capsys.readouterr().err
    assert str(raw) in err and "raw arrays" in err and "memnet prepare" in err
    assert "rm " not in err and raw.exists()


def test_dataset_name_must_match_the_prepared_file(data_npz, tmp_path, capsys):
    name = load(data_npz).name
    out = tmp_path / "out.json"
    assert run(data_npz, out, "--dataset", "cifar10") == 2 and not out.exists()
    err = capsys.readouterr().err
    assert f"holds the prepared dataset {name!r}" in err and "--dataset cifar10" in err
    assert run(data_npz, out, "--dataset", name) in (0, None) and out.exists()
