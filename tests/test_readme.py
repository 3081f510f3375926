"""The README states no figure that changes with the code unless a test here checks it.

Checked: the runs and jobs `snakemake -n` plans for config/config.yaml and config/quick.yaml, every
`memnet` subcommand of the CLI, every `make` target the README names, what it says of the configs
(quick.yaml's size and seeds, the paper config's neurons and seeds), its length, and its relative
links. Measurements (accuracies, times) are dated records and live with their commands in
docs/results.md.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from memnet.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MAX_LINES = 160

# "995 runs (1,011 jobs) for `config/config.yaml`": the form in which the README states a plan.
PLAN = re.compile(r"([\d,]+) runs \(([\d,]+) jobs\) for `config/([\w-]+)\.yaml`")


def readme() -> str:
    return README.read_text()


def flat(text: str) -> str:
    """The text with each run of whitespace (line breaks too) as one space."""
    return re.sub(r"\s+", " ", text)


def number(text: str) -> int:
    return int(text.replace(",", ""))


# ---- the plans of `snakemake -n` ---------------------------------------------------------------


def job_stats(output: str) -> dict[str, int]:
    """Jobs per rule from the first "Job stats" table of a dry run's output."""
    if "Job stats:" not in output:
        raise AssertionError(f"no 'Job stats' table in the dry run's output:\n{output[-3000:]}")
    table = output.split("Job stats:", 1)[1].split("\ntotal", 1)[0]
    counts = {}
    for line in table.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].isdigit():
            counts[fields[0]] = int(fields[1])
    return counts


def runs_and_jobs(counts: dict[str, int]) -> tuple[int, int]:
    """(runs, jobs): a run is a job of the rule `run` or of a variant of it (`run_saving_model`)."""
    runs = sum(n for rule, n in counts.items() if rule == "run" or rule.startswith("run_"))
    return runs, sum(counts.values())


def test_job_stats_reads_a_dry_runs_table():
    output = (
        "Building DAG of jobs...\nJob stats:\njob                 count\n"
        "----------------  -------\ndownload                4\nrun                    71\n"
        "run_saving_model        1\nall                     1\ntotal                  77\n\n"
        "Job stats:\njob  count\nrun  999\ntotal  999\n"
    )
    counts = job_stats(output)
    assert counts == {"download": 4, "run": 71, "run_saving_model": 1, "all": 1}
    assert runs_and_jobs(counts) == (72, 77)


@pytest.fixture(scope="module")
def plans(dry_run_of) -> dict[str, tuple[int, int]]:
    """(runs, jobs) that a dry run plans for each config the README states a plan of (the
    session's one dry run of each config, conftest.dry_run_of; one that fails is an error)."""
    found = {}
    for config in sorted({m.group(3) for m in PLAN.finditer(flat(readme()))}):
        proc = dry_run_of(f"{config}.yaml")
        found[config] = runs_and_jobs(job_stats(proc.stdout + proc.stderr))
    return found


def test_the_readme_states_the_plans_of_the_paper_and_quick_configs():
    stated = {m.group(3) for m in PLAN.finditer(flat(readme()))}
    assert {"config", "quick"} <= stated, f"README states plans for {sorted(stated)} only"


def test_the_plans_the_readme_states_are_what_snakemake_plans(plans):
    stated = {
        m.group(3): (number(m.group(1)), number(m.group(2))) for m in PLAN.finditer(flat(readme()))
    }
    wrong = {
        f"config/{c}.yaml": f"README: {stated[c][0]:,} runs ({stated[c][1]:,} jobs); "
        f"snakemake -n: {plans[c][0]:,} runs ({plans[c][1]:,} jobs)"
        for c in stated
        if stated[c] != plans[c]
    }
    assert not wrong, wrong


def test_every_count_of_runs_or_jobs_in_the_readme_is_a_checked_plan():
    """A number of runs or jobs typed anywhere else in the README would drift unchecked."""
    text = PLAN.sub("", flat(readme()))
    loose = re.findall(r"\b\d[\d,]* (?:runs?|jobs?)\b", text)
    assert not loose, f"counts of runs or jobs that no test checks: {loose}"


# ---- what the README says of the configs ------------------------------------------------------


def config(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())


def test_what_the_readme_says_of_the_quick_config_holds():
    quick = config("quick")
    subset = quick["data"]["subset"]["mnist"]
    words = {2: "two", 3: "three", 4: "four", 5: "five"}
    stated = (
        f"(MNIST only, {subset['n_train']:,} training and {subset['n_test']:,} test images, "
        f"{words.get(len(quick['seeds']), len(quick['seeds']))} seeds)"
    )
    assert quick["datasets"] == ["mnist"]
    assert stated in flat(readme()), f"README should describe config/quick.yaml as {stated!r}"


def test_what_the_readme_says_of_the_paper_config_holds():
    paper = config("config")
    stated = (
        f"`paper` ({paper['memnet']['n_neurons']:,} neurons, one pass), {len(paper['seeds'])} seeds"
    )
    assert stated in flat(readme()), f"README should describe the paper config as {stated!r}"
    assert f"`{paper['results']}/` for `config/config.yaml`" in flat(readme())
    assert f"`{config('quick')['results']}/` for `config/quick.yaml`" in flat(readme())


# ---- commands and make targets ------------------------------------------------------------------


def subcommands() -> list[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return sorted(sub.choices)


def test_the_readme_names_every_memnet_subcommand():
    commands = subcommands()
    assert {"fetch", "prepare", "run", "report"} <= set(commands)  # the parser really was read
    text = flat(readme())
    missing = [c for c in commands if f"`memnet {c}`" not in text and f"`memnet {c} " not in text]
    assert not missing, f"memnet subcommands the README does not name: {missing}"


def code_lines(text: str) -> list[str]:
    """Each line of the README's fenced code blocks, and each inline code span."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    spans = re.findall(r"`([^`]+)`", flat(prose))
    return [line for block in blocks for line in block.splitlines()] + spans


def make_targets_named(text: str) -> set[str]:
    """The targets of each `make` command in the README's code: every argument but VAR=value and
    options up to a shell operator, and in a shell comment the word after `make`."""
    targets = set()
    for line in code_lines(text):
        hash_sign = re.search(r"(^|\s)#", line)
        command, comment = (
            (line[: hash_sign.start()], line[hash_sign.end() :]) if hash_sign else (line, "")
        )
        try:
            words = shlex.split(command)
        except ValueError:
            words = command.split()
        for i, word in enumerate(words):
            if word != "make":
                continue
            for arg in words[i + 1 :]:
                if arg in {"&&", "||", ";", "|"}:
                    break
                if "=" not in arg and not arg.startswith("-"):
                    targets.add(arg)
        targets |= set(re.findall(r"(?<![\w-])make ([A-Za-z][\w.-]*\w)", comment))
    return targets


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, flags=re.M))


def test_make_targets_named_reads_commands_in_code():
    text = (
        "Run `make quick` or\n```bash\nmake reproduce CORES=8 SNAKEMAKE_ARGS=\"--config 'a=[b]'\"  # c\n"
        "MEMNET_DATA_MIRROR=/m make test -j2 && make lint   # or (make test-fast: fewer)\n```\n"
        "we make it again"
    )
    assert make_targets_named(text) == {"quick", "reproduce", "test", "lint", "test-fast"}


def test_every_make_target_the_readme_names_exists():
    named = make_targets_named(readme())
    assert {"reproduce", "test", "quick"} <= named
    missing = sorted(named - makefile_targets())
    assert not missing, f"make targets the README names but the Makefile lacks: {missing}"


# ---- length and links -------------------------------------------------------------------------


def test_the_readme_is_short():
    lines = len(readme().splitlines())
    assert lines <= MAX_LINES, (
        f"README.md has {lines} lines (at most {MAX_LINES}: details go to docs/)"
    )


def relative_links(text: str) -> list[str]:
    """Targets of the Markdown links and images that are not URLs or anchors."""
    targets = re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
    return [t for t in targets if not re.match(r"^([a-z][a-z0-9+.-]*:|#)", t, flags=re.I)]


def test_relative_links_finds_files_and_skips_urls():
    text = '[a](docs/a.md) [b](https://x.org) [c](#top) ![d](fig.png "t") [e](docs/b.md#part)'
    assert relative_links(text) == ["docs/a.md", "fig.png", "docs/b.md#part"]


def test_every_relative_link_of_the_readme_exists():
    links = relative_links(readme())
    assert links, "README.md has no relative links (the check would prove nothing)"
    broken = [t for t in links if not (README.parent / t.split("#", 1)[0]).exists()]
    assert not broken, f"README.md links to files that do not exist: {broken}"
