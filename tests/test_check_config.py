"""`memnet check-config`: what Snakemake reads before memnet can (--configfile) checked with
messages that name the file, the YAML line and the config key."""

import pytest

from memnet import cli


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "is empty"),
        ("- a\n- b\n", "is list"),
        ("results: [a\nseeds: 1\n", ", line 2, column 6: not valid YAML"),
        ("results: results/x\nseeds: [0]\n", "config key"),  # valid YAML, an incomplete config
    ],
)
def test_a_bad_config_file_is_named_with_its_line(tmp_path, capsys, text, words):
    path = tmp_path / "my config.yaml"
    path.write_text(text)
    assert cli.main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and words in err and err.count("\n") == 1


def test_a_missing_config_file_is_named(tmp_path, capsys):
    assert cli.main(["check-config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: cannot read the config file (No such file" in capsys.readouterr().err


def test_the_shipped_configs_and_an_overlay_pass(repo, tmp_path, capsys):
    overlay = tmp_path / "seeds.yaml"
    overlay.write_text("seeds: [0]\nmemnet: {k: 3}\n")  # merged over quick.yaml, as Snakemake does
    assert cli.main(["check-config", str(repo / "config/quick.yaml"), str(overlay)]) == 0
    assert cli.main(["check-config", str(repo / "config/config.yaml")]) == 0
    overlay.write_text("memnet: {k: 0}\n")
    assert cli.main(["check-config", str(repo / "config/quick.yaml"), str(overlay)]) == 2
    assert "config key 'memnet.k'" in capsys.readouterr().err
