"""The `memnet` command: one subcommand per pipeline step, each callable by hand as well.

memnet fetch      --dataset mnist --file train-images-idx3-ubyte.gz --out results/data/raw/mnist/...
memnet prepare    --dataset mnist --raw-dir results/data/raw/mnist --out results/data/mnist.npz
memnet tune       --data results/data/mnist.npz --params '{...}' --out results/tuning/mnist.json
memnet run        --data results/data/mnist.npz --model memnet --params '{...}' --seed 0 --out m.json
memnet aggregate  --runs-csv runs.csv --summary-csv summary.csv results/runs/**/*.json
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from memnet import __version__


def _json_arg(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="the dataset .npz written by `memnet prepare`")
    p.add_argument(
        "--subset", type=_json_arg, default={}, help='JSON {"n_train": N, "n_test": M}: a subset'
    )
    p.add_argument("--threads", type=int, default=1, help="threads for numba, BLAS and torch")


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
    from memnet import experiments
    from memnet.io import write_json

    data = experiments.load_data(args.data, args.subset)
    choice = experiments.tune(
        data,
        args.params,
        tau_scale=args.tau_scale,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        threads=args.threads,
    )
    write_json(args.out, choice)


def cmd_run(args) -> None:
    from memnet import experiments
    from memnet.io import read_json, write_json

    params = dict(args.params)
    if args.tuning and args.model == experiments.MEMNET and params.get("tau") is None:
        params["tau"] = read_json(args.tuning)["tau"]
    data = experiments.load_data(args.data, args.subset)
    metrics = experiments.execute(
        data=data,
        dataset=args.dataset or data.name,
        experiment=args.experiment,
        model=args.model,
        variant=args.variant,
        params=params,
        seed=args.seed,
        threads=args.threads,
        x=args.x,
        n_train=args.n_train,
        model_out=args.model_out,
    )
    write_json(args.out, metrics)
    print(f"{args.model}/{args.variant} seed {args.seed}: accuracy {metrics['accuracy']:.4f}")


def cmd_aggregate(args) -> None:
    from memnet.aggregate import runs_table, summary_table, write_csv

    runs = runs_table(args.metrics)
    write_csv(runs, args.runs_csv)
    write_csv(summary_table(runs), args.summary_csv)


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
    p.add_argument("--tau-scale", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    p.add_argument("--validation-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("run", help="train and test one model; write its metrics JSON")
    _add_data_args(p)
    p.add_argument("--model", required=True, help="memnet, mlp, cnn, knn or ncm")
    p.add_argument("--params", type=_json_arg, default={}, help="the model's parameters as JSON")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--dataset", default=None)
    p.add_argument("--experiment", default="adhoc")
    p.add_argument("--variant", default="default")
    p.add_argument("--x", type=float, default=None, help="the swept value, for the record")
    p.add_argument("--n-train", type=int, default=None, help="train on a stratified subset")
    p.add_argument("--tuning", default=None, help="a `memnet tune` file giving tau")
    p.add_argument("--model-out", default=None, help="also save the trained model here")
    p.add_argument("--out", required=True, help="the metrics JSON to write")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("aggregate", help="gather metrics files into runs.csv and summary.csv")
    p.add_argument("--runs-csv", required=True, help="output: one row per run")
    p.add_argument("--summary-csv", required=True, help="output: one row per setting")
    p.add_argument("metrics", nargs="+", help="the per-run metrics JSON files")
    p.set_defaults(func=cmd_aggregate)
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
