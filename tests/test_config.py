"""The config schema accepts both shipped configs and rejects bad ones with a message naming the key."""

import copy

import pytest
import yaml

from memnet.pipeline.config import ConfigError, validate

SCHEMA = "workflow/schemas/config.schema.yaml"


@pytest.fixture(params=["config/config.yaml", "config/quick.yaml"])
def config(request, repo):
    return yaml.safe_load((repo / request.param).read_text())


def test_shipped_configs_are_valid(config, repo):
    assert validate(copy.deepcopy(config), repo / SCHEMA) == config


@pytest.mark.parametrize(
    ("edit", "key", "why"),
    [
        (lambda c: c.update(seeds=["zero"]), "seeds[0]", "not of type 'integer'"),
        (lambda c: c.update(datasets=["svhn"]), "datasets[0]", "unknown dataset 'svhn'; known: "),
        (lambda c: c["memnet"].update(distanse="l2"), "memnet", "'distanse' was unexpected"),
        (lambda c: c["memnet"].update(threshold="soft"), "memnet.threshold", "is not one of"),
        (lambda c: c["memnet"].update(n_neurons=0), "memnet.n_neurons", "less than the minimum"),
        (
            lambda c: c["experiments"]["ablations"].update(bad={"k": "three"}),
            "experiments.ablations.bad.k",
            "not of type 'integer'",
        ),
        (lambda c: c.update(colour="blue"), "(top level)", "'colour' was unexpected"),
        (lambda c: c.pop("seeds"), "(top level)", "'seeds' is a required property"),
        (lambda c: c.pop("results"), "(top level)", "'results' is a required property"),
        (lambda c: c.update(results="out dir"), "results", "a directory path made of"),
        (lambda c: c["threads"].pop("run"), "threads", "'run' is a required property"),
        (lambda c: c["resources"].pop("run"), "resources", "'run' is a required property"),
        (lambda c: c.update(experiments={}), "experiments", "should be non-empty"),
        (
            lambda c: c["experiments"]["ablations"].update({"k-2 $(touch PWNED)": {"k": 2}}),
            "experiments.ablations",
            "'k-2 $(touch PWNED)' is not allowed here; expected a name made of letters",
        ),
        (
            lambda c: c["baselines"]["knn"].update({"a;b": {"k": 1, "metric": "l2"}}),
            "baselines.knn",
            "'a;b' is not allowed here",
        ),
        (
            lambda c: c["experiments"]["main"]["models"].update(knn=["k1 `id`"]),
            "experiments.main.models.knn[0]",
            "is not allowed here",
        ),
        (lambda c: c["local"]["default"].update(patch=0), "local.default.patch",
         "0 is not allowed here; expected a positive integer, or one per scale"),
        (lambda c: c["local"]["default"].update(stride=[3, "four"]), "local.default.stride",
         "expected a positive integer, or one per scale"),
        (lambda c: c["local"]["default"].update(scoring="max"), "local.default.scoring",
         "is not one of"),
        (lambda c: c["local"]["default"].update(preprocess="deskew+blur"),
         "local.default.preprocess", "expected null (none), a step or steps joined by '+'"),
        (lambda c: c["local"]["default"].update(n_neurons=5), "local.default",
         "'n_neurons' was unexpected"),
        (lambda c: c["local"].update({"big one": {}}), "local", "'big one' is not allowed here"),
        (lambda c: c["experiments"]["local_banks"].update(n_per_bank=[0]),
         "experiments.local_banks.n_per_bank[0]", "less than the minimum"),
        (lambda c: c["experiments"]["local_ablations"].update({"x;y": {}}),
         "experiments.local_ablations", "'x;y' is not allowed here"),
        (lambda c: c["experiments"]["local_ablations"].update(k={"k": 0}),
         "experiments.local_ablations.k.k", "less than the minimum"),
        (lambda c: c["experiments"]["main"]["models"]["local"].append("big"),
         "experiments.main.models.local", "'local' defines no 'big'"),
    ],
)  # fmt: skip
def test_bad_config_names_the_key(config, repo, edit, key, why):
    edit(config)
    with pytest.raises(ConfigError) as err:
        validate(config, repo / SCHEMA)
    assert f"config key '{key}'" in str(err.value)
    assert why in str(err.value)


def test_undefined_baseline_variant_is_named(config, repo):
    config["experiments"]["main"]["models"]["mlp"] = ["epochs99"]
    with pytest.raises(ConfigError, match=r"baselines\.mlp defines no 'epochs99'"):
        validate(config, repo / SCHEMA)


def test_the_incremental_measurement_config_is_valid_and_runs_only_its_experiments(repo):
    from memnet.pipeline.plan import plan

    config = yaml.safe_load((repo / "config/incremental-mnist.yaml").read_text())
    validate(copy.deepcopy(config), repo / SCHEMA)
    assert {r.experiment for r in plan(config)} == {"main", "incremental"}


def test_command_line_strings_become_the_numbers_the_schema_expects(config, repo):
    """Snakemake reads `--config seeds=[0,1]` as strings; they validate as the integers they spell."""
    config["seeds"] = ["0", "1"]
    config["memnet"]["n_neurons"] = "300"
    config["memnet"]["beta"] = "0.5"
    config["memnet"]["eta"] = "1e-3"  # a string to YAML 1.1, a number to Python
    config["local"]["default"]["preprocess"] = "null"
    validate(config, repo / "workflow/schemas/config.schema.yaml")
    assert config["seeds"] == [0, 1]
    assert config["memnet"]["n_neurons"] == 300 and config["memnet"]["beta"] == 0.5
    assert config["memnet"]["eta"] == 0.001
    assert config["local"]["default"]["preprocess"] is None


def test_command_line_strings_that_spell_no_number_are_still_rejected(config, repo):
    config["seeds"] = ["zero"]
    with pytest.raises(ConfigError, match=r"seeds\[0\]"):
        validate(config, repo / "workflow/schemas/config.schema.yaml")


def test_strings_the_schema_expects_stay_strings(config, repo):
    """A class name that spells a number is a string where the schema wants one, and stays one."""
    config["dataset_declarations"] = {
        "digits": {"extends": "mnist", "classes": [str(i) for i in range(10)]}
    }
    validate(config, repo / "workflow/schemas/config.schema.yaml")
    assert config["dataset_declarations"]["digits"]["classes"][0] == "0"


def test_snakemake_command_line_config_with_numbers_plans(dry_run):
    """The README's `snakemake --config 'seeds=[0,1]'` plans the runs of seeds 0 and 1 only."""
    # `snakemake -n` (one that fails is an AssertionError), shared with test_pipeline
    out = dry_run("--config", "seeds=[0,1]", "datasets=[mnist]")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    planned = out.stdout + out.stderr
    assert "/seed1.json" in planned and "/seed0.json" in planned
    assert "/seed2.json" not in planned


def _quick(repo) -> dict:
    return yaml.safe_load((repo / "config/quick.yaml").read_text())


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (lambda c: c["local"]["default"].update(patch=29), "local.default", "patch 29 does not fit"),
        (lambda c: c["local"]["default"].update(patch=[7, 11], stride=[3, 4, 5]), "local.default",
         "stride has 3 entries but patch has 2"),
        (lambda c: c["local"]["default"].update(preprocess="grayscale"), "local.default",
         "'grayscale' needs colour images with 3 channels"),
        (lambda c: c["memnet"].update(preprocess="deskew+opponent"), "memnet",
         "'opponent' needs colour images"),
        (lambda c: c["experiments"]["ablations"].update(grey={"preprocess": "grayscale"}),
         "experiments.ablations.grey", "'grayscale' needs colour images"),
        (lambda c: c["experiments"]["local_ablations"].update({"patch-40": {"patch": 40}}),
         "experiments.local_ablations.patch-40", "patch 40 does not fit"),
    ],
)  # fmt: skip
def test_parameters_that_do_not_fit_the_data_are_refused_naming_the_key(repo, change, key, words):
    config = _quick(repo)
    change(config)
    with pytest.raises(ConfigError) as err:
        validate(config)
    message = str(err.value)
    assert f"config key '{key}' on mnist (images of 1 x 28 x 28" in message and words in message


def test_a_colour_step_limited_to_colour_data_is_accepted(repo):
    config = _quick(repo)
    config["experiments"]["ablations"]["grey"] = {
        "preprocess": "grayscale",
        "only_datasets": ["cifar10"],
    }
    validate(config)  # mnist alone: the variant never runs on one channel
