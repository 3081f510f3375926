"""Bad inputs to the class-incremental stream and to aggregation: one message naming where.

- `aggregate`: the same run given twice (one file twice, or one run under two paths);
- tasks that leave classes out, name a class twice, or hold a class with no training sample, at
  each level: `incremental.make_stream`, the config's `experiments.incremental.tasks`, and
  `memnet run --tasks`.
"""

import copy

import numpy as np
import pytest
import yaml
from fixtures_data import tiny_prepared_npz

from memnet import cli
from memnet.io import write_json
from memnet.pipeline.config import ConfigError, validate
from memnet.pipeline.incremental import check_tasks, make_stream
from memnet.report import aggregate, results

# ---- aggregate: a run counts once ---------------------------------------------------------------


def metrics_file(path, seed=0, accuracy=0.9, x=None):
    metrics = {c: 0 for c in results.RUN_COLUMNS}
    metrics.update(dataset="mnist", experiment="main", model="knn", variant="k1-l2", x=x,
                   seed=seed, accuracy=accuracy, uses_backprop=False, uses_weight_sharing=False,
                   n_passes=1, params={"k": 1})  # fmt: skip
    write_json(path, metrics)
    return path


def test_the_same_metrics_file_given_twice_is_refused_naming_it(tmp_path):
    one = metrics_file(tmp_path / "seed0.json")
    other = metrics_file(tmp_path / "seed1.json", seed=1)
    again = tmp_path / "." / "seed0.json"  # the same file, spelt otherwise
    with pytest.raises(ValueError) as err:
        aggregate.runs_table([one, other, again])
    message = str(err.value)
    assert message.startswith(f"{again}: metrics file given twice (also as {one})")
    assert "give each file once" in message
    with pytest.raises(ValueError, match="given twice"):
        aggregate.runs_table([one, one])


def test_one_run_under_two_paths_is_refused_naming_both(tmp_path):
    (tmp_path / "old").mkdir()
    first = metrics_file(tmp_path / "seed0.json", accuracy=0.9)
    copy_ = metrics_file(tmp_path / "old" / "seed0.json", accuracy=0.8)
    with pytest.raises(ValueError) as err:
        aggregate.runs_table([first, copy_])
    message = str(err.value)
    assert f"{first} and {copy_} are the same run" in message
    assert "dataset 'mnist', experiment 'main', model 'knn', variant 'k1-l2', seed 0" in message
    assert "would count as two seeds" in message and "Keep one of them" in message


def test_the_aggregate_command_names_both_files_and_writes_nothing(tmp_path, capsys):
    first = metrics_file(tmp_path / "a.json")
    second = metrics_file(tmp_path / "b.json")
    runs_csv, summary_csv = tmp_path / "runs.csv", tmp_path / "summary.csv"
    args = ["aggregate", "--runs-csv", str(runs_csv), "--summary-csv", str(summary_csv)]
    assert cli.main([*args, str(first), str(second)]) == 2
    err = capsys.readouterr().err
    assert f"{first} and {second} are the same run" in err
    assert not runs_csv.exists() and not summary_csv.exists()


def test_runs_that_differ_only_in_the_swept_value_or_seed_are_kept(tmp_path):
    paths = [metrics_file(tmp_path / "x1.json", x=1), metrics_file(tmp_path / "x2.json", x=2),
             metrics_file(tmp_path / "s1.json", x=2, seed=1)]  # fmt: skip
    assert len(aggregate.runs_table(paths)) == 3


# ---- tasks: every class exactly once ------------------------------------------------------------


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ([[0, 1], [2, 3]], "tasks: classes 4, 5, 6, 7, 8, 9 of the dataset's 10 (classes 0..9) "
         "are in no task; the tasks must cover every class exactly once"),
        ([[0, 1, 2, 3, 4, 5, 6, 7, 8]], "tasks: class 9 of the dataset's 10 (classes 0..9) is in "
         "no task"),
        ([[0, 0], [1, 2]], "tasks: class 0 appears twice in task 0 [0, 0]; list it once"),
        ([[0, 1], [2, 1]], "tasks: class 1 appears in two tasks, task 0 and task 1; each class "
         "belongs to one task"),
        ([[0, 1], [10]], "tasks: task 1 names class 10, which the dataset lacks (its classes are "
         "0..9); use class indices 0..9"),
    ],
)  # fmt: skip
def test_tasks_must_cover_every_class_once(tasks, message):
    y = np.arange(100) % 10
    with pytest.raises(ValueError) as err:
        make_stream(y, tasks, seed=0, n_classes=10)
    assert str(err.value).startswith(message)


def test_every_class_once_is_accepted_in_any_grouping():
    assert check_tasks([[3, 1], [0], [2]], n_classes=4) == ((3, 1), (0,), (2,))


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.array([0, 1, 0, 1, 2, 2]), "task 1 [2, 3] has no training sample of class 3: the "
         "training labels lack it"),
        (np.array([0, 1, 0, 1]), "task 1 [2, 3] has no training sample of classes 2, 3: the "
         "training labels lack them"),
    ],
)  # fmt: skip
def test_a_task_class_with_no_training_sample_is_named(y, message):
    with pytest.raises(ValueError) as err:
        make_stream(y, [[0, 1], [2, 3]], seed=0, n_classes=4)
    assert str(err.value).startswith(message)
    assert "Train on data with samples of every class" in str(err.value)


# ---- the config's experiments.incremental.tasks --------------------------------------------------


@pytest.fixture
def incremental_config(repo):
    return yaml.safe_load((repo / "config/quick.yaml").read_text())


@pytest.mark.parametrize(
    ("tasks", "words"),
    [
        ([[0, 1], [2, 3]], "classes 4, 5, 6, 7, 8, 9 of the dataset's 10 (classes 0..9) are in no "
         "task"),
        ([[0, 1], [1, 2, 3, 4, 5, 6, 7, 8, 9]], "class 1 appears in two tasks, task 0 and task 1"),
    ],
)  # fmt: skip
def test_config_tasks_that_miss_a_class_name_the_key_and_dataset(incremental_config, tasks, words):
    incremental_config["experiments"]["incremental"]["tasks"] = tasks
    with pytest.raises(ConfigError) as err:
        validate(incremental_config)
    prefix = "config key 'experiments.incremental.tasks' on mnist (10 classes): "
    assert str(err.value).startswith(prefix + words)


def test_the_class_count_comes_from_the_dataset_declaration(incremental_config):
    """A declared five-class dataset: the five-class tasks fit it and the shipped ten do not."""
    config = incremental_config
    config["dataset_declarations"] = {"five": {"extends": "mnist", "classes": list("abcde")}}
    config["datasets"] = ["mnist", "five"]
    config["experiments"]["incremental"]["only_datasets"] = ["five"]
    with pytest.raises(ConfigError, match=r"on five \(5 classes\): task 2 names class 5, which"):
        validate(copy.deepcopy(config))
    config["experiments"]["incremental"]["tasks"] = [[0, 1], [2, 3], [4]]
    validate(config)


# ---- memnet run --tasks --------------------------------------------------------------------------


@pytest.fixture
def data_npz(tmp_path):
    return tiny_prepared_npz(tmp_path / "tiny.npz", n_train=200, n_test=60)


def run_tasks(data_npz, out, tasks):
    args = ["run", "--model", "ncm", "--seed", "0", "--tasks", tasks]
    return cli.main([*args, "--data", str(data_npz), "--out", str(out)])


def test_run_tasks_that_miss_classes_are_refused_naming_the_option(data_npz, tmp_path, capsys):
    out = tmp_path / "out.json"
    assert run_tasks(data_npz, out, "[[0,1],[2,3]]") == 2 and not out.exists()
    err = capsys.readouterr().err
    assert err.startswith(
        "memnet run: error: --tasks: classes 4, 5, 6, 7, 8, 9 of the dataset's 10 (classes 0..9) "
        "are in no task"
    )


def test_run_tasks_with_a_class_twice_are_refused_when_parsed(data_npz, tmp_path, capsys):
    out = tmp_path / "out.json"
    with pytest.raises(SystemExit) as exit_:
        run_tasks(data_npz, out, "[[0,0],[1,2]]")
    assert exit_.value.code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "argument --tasks: class 0 appears twice in task 0 [0, 0]; list it once" in err


def test_run_tasks_covering_every_class_run(data_npz, tmp_path):
    out = tmp_path / "out.json"
    assert run_tasks(data_npz, out, "[[0,1,2,3,4],[5,6,7,8,9]]") == 0 and out.exists()
