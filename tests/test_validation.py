"""memnet.validation: each check accepts exactly what it documents and names what it refuses;
and the one way to build a model from a dict of parameters (config, command line) uses them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from memnet import cli
from memnet.models.memory.network import MemoryNetwork
from memnet.models.registry import make_model
from memnet.validation import (
    FINITE_CHUNK,
    NotFittedError,
    check_bool,
    check_choice,
    check_images,
    check_int,
    check_labels,
    check_param_names,
    check_random_state,
    check_real,
)

# ---- images -----------------------------------------------------------------------------------


def test_images_keep_their_data_and_flat_rows_become_one_channel():
    X = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    assert check_images(X) is X or np.shares_memory(check_images(X), X)
    flat = np.arange(12, dtype=np.float64).reshape(3, 4)
    got = check_images(flat)
    assert got.shape == (3, 1, 1, 4) and got.dtype == np.float64 and np.shares_memory(got, flat)
    np.testing.assert_array_equal(got[:, 0, 0], flat)
    raw = np.arange(16, dtype=np.uint8).reshape(1, 1, 4, 4)
    assert check_images(raw).dtype == np.uint8  # scaled later, chunk by chunk
    ints = check_images(np.array([[1, 2], [3, 4]]), integers="any", dtype=np.float32)
    assert ints.dtype == np.float32 and ints.ravel().tolist() == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    ("X", "kwargs", "message"),
    [
        (
            np.zeros((4, 2, 2), np.float32),
            {},
            r"X must have shape \(n, C, H, W\) or \(n, d\); got 3",
        ),
        (
            np.zeros((4, 6), np.float32),
            {"flat": False, "owner": "the cnn"},
            r"\(n, C, H, W\) for the cnn",
        ),
        (np.zeros((4, 1, 2, 2), np.int64), {}, r"uint8 \(0..255, scaled by 1/255\).*int64"),
        (np.zeros((4, 2), bool), {"integers": "any"}, r"real numbers.*dtype bool"),
        (np.full((4, 2), "a"), {"integers": "any"}, r"real numbers.*<U1"),
        (np.zeros((0, 1, 2, 2), np.float32), {}, r"X is empty: it has no samples"),
        (np.zeros((4, 0), np.float32), {}, r"X has no features: shape \(4, 0\)"),
        (np.full((2, 3), np.inf), {"name": "X_test"}, r"X_test contains NaN or infinite"),
    ],
)
def test_bad_images_are_refused_with_their_reason(X, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_images(X, **kwargs)


def test_a_nan_in_a_later_chunk_is_found_and_huge_values_fail_once_converted():
    X = np.zeros((FINITE_CHUNK + 3, 1, 1, 2), np.float32)
    X[FINITE_CHUNK + 1, 0, 0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        check_images(X)
    big = np.full((2, 2), 1e39)  # finite in float64, inf in float32
    assert check_images(big) is not None
    with pytest.raises(ValueError, match="NaN or infinite"):
        check_images(big, dtype=np.float32)


# ---- labels -----------------------------------------------------------------------------------


def test_labels_become_int64_and_are_checked_against_the_samples():
    y = check_labels(np.array([3, -1, 2], np.int32), 3)
    assert y.dtype == np.int64 and y.tolist() == [3, -1, 2]  # any labels, unless zero_based
    with pytest.raises(ValueError, match=r"y must have shape \(4,\), one label per sample"):
        check_labels([0, 1, 2], 4)
    with pytest.raises(ValueError, match=r"got shape \(2, 1\)"):
        check_labels([[0], [1]], 2)
    with pytest.raises(ValueError, match="integer class labels; got dtype float64"):
        check_labels([0.0, 1.0], 2)
    with pytest.raises(ValueError, match=r"negative label \(-1\); classes are 0..K-1"):
        check_labels([0, -1], 2, zero_based=True)
    with pytest.raises(ValueError, match=r"label 3 but the model has 3 classes \(0..2\)"):
        check_labels([0, 3], 2, zero_based=True, n_classes=3)
    assert check_labels([0, 2], 2, zero_based=True, n_classes=3).tolist() == [0, 2]


# ---- parameters -------------------------------------------------------------------------------


def test_integers():
    assert check_int("k", np.int64(3), minimum=1) == 3
    assert check_int("k", None, minimum=1, allow_none=True) is None
    for bad in (0, True, 2.0, "3", None):
        with pytest.raises(ValueError, match=rf"k must be an integer >= 1; got {bad!r}"):
            check_int("k", bad, minimum=1)
    with pytest.raises(ValueError, match="an integer >= 1 or None; got 0"):
        check_int("k", 0, minimum=1, allow_none=True)


def test_reals_respect_open_and_closed_ends():
    tiny = float(np.nextafter(0, 1))
    assert check_real("beta", tiny, low=0, high=1, low_open=True, high_open=True) == tiny
    assert check_real("eta", 1.0, low=0, high=1, low_open=True) == 1.0
    assert check_real("tau", np.float32(0.0), low=0) == 0.0
    cases = [
        ({"low": 0, "high": 1, "low_open": True, "high_open": True}, 1.0, r"in \(0, 1\); got 1.0"),
        ({"low": 0, "high": 1, "low_open": True}, 0.0, r"in \(0, 1\]; got 0.0"),
        ({"low": 0, "low_open": True}, float("inf"), "a positive number; got inf"),
        ({"low": 0}, float("nan"), "a number >= 0; got nan"),
        ({"low": 0}, -1, "a number >= 0; got -1"),
        ({"low": 0}, False, "got False"),
        ({"low": 0, "allow_none": True}, "1", "a number >= 0 or None; got '1'"),
    ]
    for kwargs, value, message in cases:
        with pytest.raises(ValueError, match=message):
            check_real("x", value, **kwargs)


def test_booleans_choices_and_seeds():
    assert check_bool("shuffle", np.bool_(True))
    with pytest.raises(ValueError, match="shuffle must be True or False; got 1"):
        check_bool("shuffle", 1)
    assert check_choice("metric", "l1", ("l2", "l1")) == "l1"
    for bad in ("L1", 1, None):
        with pytest.raises(
            ValueError, match=rf"metric {bad!r} is unknown; choose one of 'l2', 'l1'"
        ):
            check_choice("metric", bad, ("l2", "l1"))
    assert check_random_state(None) is None and check_random_state(0) == 0
    with pytest.raises(ValueError, match="random_state must be an integer >= 0; got None"):
        check_random_state(None, allow_none=False)
    with pytest.raises(ValueError, match="random_state must be an integer >= 0 or None; got -1"):
        check_random_state(-1)


def test_parameter_names():
    check_param_names("the x model", {"k": 1}, ["k", "metric"])
    with pytest.raises(
        ValueError,
        match=r"unknown parameters 'a', 'b' for the x model; allowed parameters: \['k', 'metric'\]",
    ):
        check_param_names("the x model", {"a": 1, "k": 1, "b": 2}, ["metric", "k"])
    with pytest.raises(ValueError, match="unknown parameter 'k' for y; allowed parameters: none"):
        check_param_names("y", {"k": 1}, [])


def test_not_fitted_is_both_a_value_and_a_runtime_error():
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, RuntimeError)
    with pytest.raises(NotFittedError, match="MemoryNetwork.*not fitted"):
        MemoryNetwork().predict(np.zeros((1, 4)))
    with pytest.raises(NotFittedError):
        _ = MemoryNetwork().work_


# ---- a model from a dict of parameters ----------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        (
            "memnet",
            {"gamma": 1},
            r"unknown parameter 'gamma' for MemoryNetwork \(memnet\); allowed parameters: \['beta',",
        ),
        ("memnet", {"n_neurons": "10"}, r"n_neurons must be an integer >= 1; got '10'"),
        ("memnet", {"distance": "euclid"}, r"distance 'euclid' is unknown; choose one of 'l2'"),
        ("memnet", {"random_state": 3}, r"'random_state' is set by the run"),
        (
            "knn",
            {"gamma": 1},
            r"unknown parameter 'gamma' for baseline 'knn'; allowed parameters: \['k', 'metric'\]",
        ),
        ("mlp", {"lr": "fast"}, r"lr must be a positive number; got 'fast'"),
        ("svm", {}, r"unknown model 'svm'"),
    ],
)
def test_make_model_refuses_bad_parameters_before_training(model, params, message):
    with pytest.raises(ValueError, match=message):
        make_model(model, params, seed=0, threads=1)


def test_make_model_builds_the_model_the_parameters_describe():
    model = make_model("memnet", {"n_neurons": 7, "k": 3}, seed=5, threads=1)
    assert model.get_params() == MemoryNetwork(n_neurons=7, k=3, random_state=5).get_params()
    knn = make_model("knn", {"k": 2}, seed=1, threads=2)
    assert knn.get_params() == {"k": 2, "metric": "l2", "random_state": 1, "n_threads": 2}


def test_the_command_line_names_an_unknown_parameter_and_writes_nothing(tmp_path, capsys):
    from fixtures_data import tiny_prepared_npz

    data = tiny_prepared_npz(tmp_path / "tiny.npz", n_train=40, n_test=10)
    out = tmp_path / "m.json"
    args = ["run", "--data", str(data), "--model", "memnet", "--seed", "0", "--out", str(out)]
    code = cli.main([*args, "--params", json.dumps({"gamma": 1})])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "unknown parameter 'gamma'" in err and "Traceback" not in err
