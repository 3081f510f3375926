"""The `memnet` command: one subcommand per pipeline step, each callable by hand as well.

memnet fetch      --dataset mnist --file train-images-idx3-ubyte.gz --out results/data/raw/mnist/...
memnet prepare    --dataset mnist --raw-dir results/data/raw/mnist --out results/data/mnist.npz
memnet tune       --data results/data/mnist.npz --params '{...}' --out results/tuning/mnist.json
memnet run        --data results/data/mnist.npz --model memnet --params '{...}' --seed 0 --out m.json
memnet aggregate  --runs-csv runs.csv --summary-csv summary.csv results/runs/**/*.json
memnet tables     --summary summary.csv --runs runs.csv --claims paper/claims.yaml \
                  --models seed0.npz seed0.json --out results/tables
memnet figures    --summary summary.csv --runs runs.csv --claims paper/claims.yaml \
                  --models seed0.npz seed0.json --confusions results/runs/.../seed0.json ... \
                  --model-seed 0 --datasets mnist --out results/figures
memnet report     --template paper/replication.md.j2 --runs runs.csv --metrics run.json \
                  --tables T1_main.csv T1_main.md ... --figures F1_neurons.png ... \
                  --captions workflow/report/T1_main.rst ... --datasets mnist --out replication.md
memnet notebook   --notebook notebooks/results.ipynb --out results/notebooks/results.ipynb \
                  -p results_dir=results -p model_path=seed0.npz

Every step reads exactly the files it is given, never a directory; the heavy libraries (matplotlib,
seaborn, papermill) load only in the commands that draw or execute.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from pathlib import Path

from memnet import __version__
from memnet.models.registry import FAMILIES


def _json_arg(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _integer(minimum: int):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


_positive_int, _seed = _integer(1), _integer(0)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_real(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a fraction strictly between 0 and 1, got {text!r}"
        )
    return value


def _run_arg(text: str):
    from memnet.pipeline.plan import Run

    try:
        return Run.from_json(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--run: ")) from None


def _outputs_arg(text: str) -> list:
    from memnet.report.outputs import Output

    try:
        entries = json.loads(text)
        return [Output(**entry) for entry in entries]
    except (json.JSONDecodeError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON list of outputs ({exc})") from None


def _tasks_arg(text: str) -> list[list[int]]:
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}): {text!r}") from None
    if not (
        isinstance(tasks, list)
        and tasks
        and all(isinstance(t, list) and t for t in tasks)
        and all(isinstance(c, int) and not isinstance(c, bool) for t in tasks for c in t)
    ):
        raise argparse.ArgumentTypeError(
            f"expected a JSON list of non-empty lists of class indices, got {text!r}"
        )
    from memnet.pipeline.incremental import check_tasks

    try:  # a class twice; that the tasks cover the data's classes is checked once it is loaded
        check_tasks(tasks, None)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("tasks: ")) from None
    return tasks


SUBSET_KEYS = ("n_train", "n_test")


def _subset_arg(text: str) -> dict:
    subset = _json_arg(text)
    unknown = sorted(set(subset) - set(SUBSET_KEYS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown key(s) {unknown} in {text!r}; a subset takes only {list(SUBSET_KEYS)}"
        )
    for key, value in subset.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise argparse.ArgumentTypeError(
                f"{key} must be an integer >= 1, got {value!r} in {text!r}"
            )
    return subset


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="the dataset .npz written by `memnet prepare`")
    p.add_argument(
        "--subset", type=_subset_arg, default={}, help='JSON {"n_train": N, "n_test": M}: a subset'
    )
    p.add_argument(
        "--threads", type=_positive_int, default=1, help="threads for numba, BLAS and torch"
    )


def _terminate_cleanly() -> None:
    """Turn SIGTERM (what Snakemake and schedulers send) into SystemExit, so temp files go."""

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _spec(args):
    from memnet import datasets

    if args.declaration is not None:
        return datasets.spec_from_json(args.dataset, args.declaration)
    return datasets.get_spec(args.dataset)


def cmd_fetch(args) -> None:
    from memnet.datasets import fetch_file

    _terminate_cleanly()
    fetch_file(_spec(args), args.file, args.out, mirror=args.mirror)


def cmd_prepare(args) -> None:
    from memnet.datasets import prepare

    _terminate_cleanly()
    prepare(_spec(args), args.raw_dir, args.out)


def cmd_tune(args) -> None:
    from memnet.io import write_json
    from memnet.pipeline.execute import load_data
    from memnet.pipeline.tune import tune

    data = load_data(args.data, args.subset)
    choice = tune(
        data,
        args.params,
        tau_scale=args.tau_scale,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        threads=args.threads,
    )
    write_json(args.out, choice)


def cmd_run(args) -> None:
    from memnet.io import read_json, write_json
    from memnet.pipeline import execute

    family = None
    if args.run is not None:
        run = args.run
        if args.model is not None:
            raise ValueError("give --run or --model, not both")
        args.model, args.params, args.dataset = run.model, run.params, run.dataset
        args.experiment, args.variant, args.x, args.n_train = (
            run.experiment,
            run.variant,
            run.x,
            run.n_train,
        )
        args.tasks, family = run.tasks, run.family
    elif args.model is None:
        raise ValueError("give --model (or --run, the whole run as JSON)")
    params = dict(args.params)
    tuned = args.model in FAMILIES and FAMILIES[args.model].tuned
    if args.tuning and tuned and params.get("tau") is None:
        params["tau"] = _tuned_tau(read_json(args.tuning), args.tuning, params)
    data = execute.load_data(args.data, args.subset)
    if args.dataset is not None and args.dataset != data.name:
        raise ValueError(
            f"--dataset {args.dataset}, but --data {args.data} holds the prepared dataset "
            f"{data.name!r}; give the .npz of {args.dataset}, or leave --dataset out"
        )
    common = dict(
        data=data,
        dataset=args.dataset or data.name,
        experiment=args.experiment,
        model=args.model,
        variant=args.variant,
        params=params,
        seed=args.seed,
        threads=args.threads,
        family=family,
    )
    if args.tasks is not None:
        if args.model_out or args.n_train or args.x is not None:
            raise ValueError(
                "--tasks (a class-incremental stream) takes no --model-out, --n-train or --x"
            )
        from memnet.pipeline.incremental import check_tasks

        where = "--tasks" if args.run is None else "--run's tasks"
        check_tasks(args.tasks, len(data.classes), name=where)
        metrics = execute.execute_stream(**common, tasks=args.tasks)
    else:
        metrics = execute.execute(
            **common, x=args.x, n_train=args.n_train, model_out=args.model_out
        )
    write_json(args.out, metrics)
    what = "final accuracy" if args.tasks is not None else "accuracy"
    print(f"{args.model}/{args.variant} seed {args.seed}: {what} {metrics['accuracy']:.4f}")


def _tuned_tau(tuning, path, params) -> float:
    from memnet.pipeline.tune import tuned_tau

    distance = params.get("distance", "l2")
    try:
        tau = tuned_tau(tuning, distance)
    except (AttributeError, KeyError, TypeError, ValueError):
        tau = None
    if tau is None or not 0 < tau < float("inf"):
        raise ValueError(
            f"{path}: not a `memnet tune` result giving an initial tau for distance {distance!r}; "
            "delete it and rerun the tune step"
        )
    return tau


def cmd_check_config(args) -> None:
    """Read config files as Snakemake's --configfile does (later files over earlier ones), then
    validate: a missing, empty or broken file is named, with the line of a YAML error."""
    import yaml
    from snakemake.utils import update_config  # how Snakemake merges its --configfile files

    from memnet.pipeline.config import ConfigError, validate

    merged: dict = {}
    for path in args.configfile:
        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the config file ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or exc
            raise ValueError(f"{path}{where}: not valid YAML ({problem})") from None
        if not isinstance(loaded, dict):
            raise ValueError(
                f"{path}: a config file is a mapping of keys (results:, datasets:, ...); this one "
                f"is {'empty' if loaded is None else type(loaded).__name__}"
            )
        update_config(merged, loaded)
    try:
        validate(merged)
    except ConfigError as exc:
        raise ValueError(f"{', '.join(map(str, args.configfile))}: {exc}") from None
    print(f"{', '.join(map(str, args.configfile))}: a valid config")


def cmd_aggregate(args) -> None:
    from memnet.report.aggregate import runs_table, summary_table, write_csv

    runs = runs_table(args.metrics)
    write_csv(runs, args.runs_csv)
    write_csv(summary_table(runs), args.summary_csv)


def _print_written(paths) -> None:
    print("\n".join(str(p) for p in paths))


def _load_results(args) -> tuple:
    """(summary, runs, claims) of the --summary, --runs and --claims files."""
    from memnet.report.claims import load_claims
    from memnet.report.results import load_runs, load_summary

    return load_summary(args.summary), load_runs(args.runs), load_claims(args.claims)


def cmd_tables(args) -> None:
    from memnet.datasets import stand_in_reason
    from memnet.report import tables
    from memnet.report.claims import load_anchors

    anchors = load_anchors(args.claims)
    stand_ins = {name: why for name, why in map(stand_in_reason, args.data) if why}
    captions = {path.stem: " ".join(path.read_text().split()) for path in args.captions}
    written = tables.build_all(
        *_load_results(args), args.models, args.out, anchors, stand_ins, captions
    )
    _print_written(written)


def cmd_figures(args) -> None:
    from memnet.report import figures

    written = figures.build_all(
        *_load_results(args),
        args.confusions,
        args.models,
        args.model_seed,
        args.datasets,
        args.out,
    )
    _print_written(written)


def cmd_report(args) -> None:
    from memnet.report import replication as report

    context = report.build_context(
        args.runs,
        args.metrics,
        args.tables,
        args.figures,
        args.captions,
        args.datasets,
        args.out,
        extras=args.extras,
        config_file=args.config_file,
    )
    _print_written(report.render(args.template, context, args.out))


def cmd_notebook(args) -> None:
    from memnet.report import replication as report

    _print_written(report.run_notebook(args.notebook, args.out, dict(args.parameter), args.cwd))


def _parameter(text: str) -> tuple[str, str]:
    if "=" in text:
        key, value = text.split("=", 1)
        return key, value
    raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")


def _add_results_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--summary", required=True, type=Path, help="results/tables/summary.csv")
    p.add_argument("--runs", required=True, type=Path, help="results/tables/runs.csv")
    p.add_argument("--claims", required=True, type=Path, help="paper/claims.yaml")
    p.add_argument(
        "--models",
        nargs="*",
        type=Path,
        default=[],
        metavar="FILE",
        help="saved models (.npz) and the metrics (.json) of the runs that trained them",
    )
    p.add_argument("--out", required=True, type=Path, help="output directory")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memnet", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"memnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fetch", help="download and verify one raw dataset file")
    p.add_argument("--dataset", required=True)
    p.add_argument("--file", required=True, help="the file's name in its declaration")
    p.add_argument("--out", required=True)
    p.add_argument("--mirror", default=None, help="a mirror directory (else $MEMNET_DATA_MIRROR)")
    p.add_argument(
        "--declaration",
        default=None,
        help="the dataset's declaration as JSON (else the one of config/datasets.yaml)",
    )
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("prepare", help="convert verified raw files into one .npz")
    p.add_argument("--dataset", required=True)
    p.add_argument("--raw-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument(
        "--declaration",
        default=None,
        help="the dataset's declaration as JSON (else the one of config/datasets.yaml)",
    )
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("tune", help="choose the initial tau on a validation split")
    _add_data_args(p)
    p.add_argument("--params", type=_json_arg, required=True, help="MemoryNetwork parameters")
    p.add_argument("--tau-scale", type=_positive_real, nargs="+", default=[0.5, 1.0, 2.0])
    p.add_argument("--validation-fraction", type=_fraction, default=0.1)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("run", help="train and test one model; write its metrics JSON")
    _add_data_args(p)
    p.add_argument(
        "--run",
        type=_run_arg,
        default=None,
        help="the whole run as the pipeline plans it (JSON of memnet.pipeline.plan.Run); "
        "else give --model and the options below",
    )
    p.add_argument("--model", default=None, help=f"one of {', '.join(FAMILIES)}")
    p.add_argument("--params", type=_json_arg, default={}, help="the model's parameters as JSON")
    p.add_argument("--seed", type=_seed, required=True)
    p.add_argument("--dataset", default=None)
    p.add_argument("--experiment", default="adhoc")
    p.add_argument("--variant", default="default")
    p.add_argument("--x", type=_finite, default=None, help="the swept value, for the record")
    p.add_argument(
        "--n-train", type=_positive_int, default=None, help="train on a stratified subset"
    )
    p.add_argument("--tuning", default=None, help="a `memnet tune` file giving tau")
    p.add_argument(
        "--tasks",
        type=_tasks_arg,
        default=None,
        help="JSON [[0, 1], [2, 3], ...]: learn the classes as a class-incremental stream of tasks",
    )
    p.add_argument("--model-out", default=None, help="also save the trained model here")
    p.add_argument("--out", required=True, help="the metrics JSON to write")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "check-config", help="check config files before Snakemake reads them (names file and line)"
    )
    p.add_argument("configfile", nargs="+", type=Path, help="config/quick.yaml [more.yaml ...]")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("aggregate", help="gather metrics files into runs.csv and summary.csv")
    p.add_argument("--runs-csv", required=True, help="output: one row per run")
    p.add_argument("--summary-csv", required=True, help="output: one row per setting")
    p.add_argument("metrics", nargs="+", help="the per-run metrics JSON files")
    p.set_defaults(func=cmd_aggregate)

    p = sub.add_parser(
        "tables", help="the tables of memnet.report.outputs (CSV, Markdown, LaTeX) from the results"
    )
    _add_results_args(p)
    p.add_argument(
        "--data",
        nargs="*",
        type=Path,
        default=[],
        metavar="NPZ",
        help="the prepared datasets: a paper claim on one not made from its published files "
        "is not measurable",
    )
    p.add_argument(
        "--captions", nargs="*", default=[], type=Path, metavar="FILE",
        help="each table's caption, workflow/report/<stem>.rst (the LaTeX caption)",
    )  # fmt: skip
    p.set_defaults(func=cmd_tables)

    p = sub.add_parser(
        "figures", help="the figures of memnet.report.outputs (PDF, PNG) from the results"
    )
    _add_results_args(p)
    p.add_argument(
        "--confusions",
        nargs="*",
        type=Path,
        default=[],
        metavar="FILE",
        help="the main/memnet/paper run files whose confusion matrices F5 sums",
    )
    p.add_argument("--model-seed", type=int, default=0, help="seed of the model F4 draws")
    p.add_argument("--datasets", nargs="+", required=True, help="the config's datasets")
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("report", help="the replication report, Markdown and self-contained HTML")
    p.add_argument("--template", required=True, type=Path, help="paper/replication.md.j2")
    p.add_argument("--runs", required=True, type=Path, help="results/tables/runs.csv")
    p.add_argument("--metrics", type=Path, help="one run's metrics JSON: versions, git revision")
    p.add_argument(
        "--tables", nargs="+", required=True, type=Path, metavar="FILE",
        help="the tables' files: T1_main.csv, T2_claims.csv and every T*.md",
    )  # fmt: skip
    p.add_argument(
        "--figures", nargs="+", required=True, type=Path, metavar="FILE",
        help="every figure's PNG",
    )  # fmt: skip
    p.add_argument(
        "--captions", nargs="*", default=[], type=Path, metavar="FILE",
        help="the captions, workflow/report/<stem>.rst",
    )  # fmt: skip
    p.add_argument("--datasets", nargs="+", required=True, help="the config's datasets")
    p.add_argument(
        "--extras", type=_outputs_arg, default=[], metavar="JSON",
        help="outputs of users' rules to show (JSON list of memnet.report.outputs.Output fields; "
        "their files among --figures or --tables, their captions among --captions)",
    )  # fmt: skip
    p.add_argument(
        "--config-file", default=None, help="the config file(s) of the run, named in the report"
    )
    p.add_argument("--out", required=True, type=Path, help="results/paper/replication.md")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("notebook", help="execute a notebook with papermill, then export HTML")
    p.add_argument("--notebook", required=True, type=Path, help="notebooks/<name>.ipynb")
    p.add_argument("--out", required=True, type=Path, help="results/notebooks/<name>.ipynb")
    p.add_argument(
        "-p", "--parameter", type=_parameter, action="append", default=[], metavar="KEY=VALUE",
        help="a papermill parameter (repeatable)",
    )  # fmt: skip
    p.add_argument("--cwd", type=Path, help="the kernel's working directory")
    p.set_defaults(func=cmd_notebook)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"memnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
