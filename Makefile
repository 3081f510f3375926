# Two commands do everything on a fresh machine: `make reproduce` and `make test`.
# Each bootstraps .venv from pyproject.toml (the one list of dependencies) when it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
SNAKEMAKE_ARGS ?=

.PHONY: venv reproduce quick test test-fast bench bench-paper bench-rehearsal lint format clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,slurm]'
	touch $(STAMP)

reproduce: venv
	$(BIN)/snakemake --cores $(CORES) $(SNAKEMAKE_ARGS)
	$(BIN)/snakemake --cores $(CORES) --report results/paper/report.zip $(SNAKEMAKE_ARGS)

quick: venv
	$(BIN)/snakemake --cores $(CORES) --configfile config/quick.yaml $(SNAKEMAKE_ARGS)

# Everything (CI runs this). test-fast leaves out the slow tests, the SLURM cluster and every test
# that runs pipeline jobs (e2e: the quick run of config/quick.yaml and the dataset pipelines).
test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/python -m pytest -m "not slow and not slurm and not e2e" $(PYTEST_ARGS)

bench: venv
	$(BIN)/python -m memnet.bench --out results/bench
	$(BIN)/python -m memnet.bench_local --out results/bench --repeats 2
	$(BIN)/python -m memnet.bench_hierarchy --out results/bench --param layer2_hidden=4000
	$(BIN)/python -m memnet.bench_peers --out results/bench
	$(BIN)/python -m memnet.bench_pipeline --name quick --configfile config/quick.yaml --out results/bench

# The full paper config on MNIST alone (long: see results/bench/pipeline-paper-mnist.md).
bench-paper: venv
	$(BIN)/python -m memnet.bench_pipeline --name paper-mnist --config 'datasets=[mnist]' --out results/bench

# The paper config on a full-size synthetic CIFAR-10 standing in for the real one, one seed: each rule's time
# and peak memory, checked against its declared memory, and the 5-seed cost extrapolated
# (results/bench/pipeline-rehearsal-cifar10.md; long, see the README).
REHEARSAL := $(CURDIR)/results/rehearsal
bench-rehearsal: venv
	$(BIN)/python -m memnet.datasets.synthetic cifar10 --out $(REHEARSAL)/mirror/cifar10
	$(BIN)/python -m memnet.bench_pipeline --name rehearsal-cifar10 --workdir $(REHEARSAL)/run --out results/bench \
	  --config 'datasets=[cifar10]' 'seeds=[0]' 'results=results/rehearsal' \
	  'dataset_declarations={cifar10: {extends: cifar10-synthetic}}' \
	  'data={dir: results/data, mirror: $(REHEARSAL)/mirror, subset: {}}'

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --cores 1

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/snakefmt Snakefile workflow/rules

clean:
	rm -rf results .snakemake
