"""Shared fixtures: the repo, the dataset mirror, one end-to-end run of config/quick.yaml, one dry
run per config, and numba's cache, warmed before the first pipeline job."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
QUICK_CONFIG = REPO / "config" / "quick.yaml"
sys.path.insert(0, str(Path(__file__).parent))  # lets tests import their fixture helpers

# Fixtures that run the whole quick pipeline: a test that uses one is an `e2e` test (added below,
# so that `make test-fast` never starts the pipeline through a test that forgot its mark).
E2E_FIXTURES = {"quick_pipeline", "quick_run"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


def find_mirror() -> Path | None:
    """The dataset mirror named by $MEMNET_DATA_MIRROR, when it holds mnist/; else None."""
    mirror = os.environ.get("MEMNET_DATA_MIRROR")
    if mirror and (Path(mirror) / "mnist").is_dir():
        return Path(mirror).resolve()
    return None


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def mirror() -> Path:
    found = find_mirror()
    if found is None:
        where = os.environ.get("MEMNET_DATA_MIRROR")
        pytest.skip(
            f"MEMNET_DATA_MIRROR={where} has no mnist/ directory"
            if where
            else "no MNIST mirror: set MEMNET_DATA_MIRROR to a directory holding mnist/*-ubyte.gz"
        )
    return found


def snakemake(
    *args: str,
    cwd: Path,
    check: bool = True,
    timeout: int = 1800,
    env=None,
    snakefile: Path = SNAKEFILE,
):
    """Run ``snakefile`` (the repo's) with its working directory at ``cwd`` (the mirror from
    find_mirror)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(cwd)]
    env = {**os.environ, **(env or {})}
    mirror = find_mirror()
    if mirror is not None:
        env.setdefault("MEMNET_DATA_MIRROR", str(mirror))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


def copy_checkout(repo: Path, dst: Path) -> Path:
    """The tracked files of the repository (as they are now, committed or not) under ``dst``."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        if (repo / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, dst / name)
    return dst


@pytest.fixture(scope="session")
def numba_cache():
    """numba's on-disk cache, warm for every kernel the quick config's jobs call (tests/warmup.py):
    requested by every fixture or test that starts pipeline jobs, before its first one."""
    from warmup import warm_numba

    return warm_numba([yaml.safe_load(QUICK_CONFIG.read_text())])


@dataclass(frozen=True)
class QuickRun:
    """The session's one run of config/quick.yaml: a copy of the checkout under a directory whose
    name holds a space (``my checkout/memnet``), a working directory ``work dir`` and the config as
    ``quick config.yaml``, so that the run also shows that such paths reach the shell safely."""

    workdir: Path
    snakefile: Path
    configfile: Path

    def snakemake(self, *args: str, cwd: Path | None = None, **kwargs):
        """snakemake with this run's Snakefile (by default in its working directory)."""
        return snakemake(*args, cwd=cwd or self.workdir, snakefile=self.snakefile, **kwargs)


@pytest.fixture(scope="session")
def quick_pipeline(tmp_path_factory, mirror, numba_cache) -> QuickRun:
    """The one full run of config/quick.yaml on real MNIST, 2 cores, shared by every test that reads
    it; a test that changes its results works on a copy (shutil.copytree of ``workdir``)."""
    base = tmp_path_factory.mktemp("quick run")
    checkout = copy_checkout(REPO, base / "my checkout" / "memnet")
    workdir = base / "work dir"
    workdir.mkdir()
    configfile = base / "quick config.yaml"
    shutil.copy(QUICK_CONFIG, configfile)
    quick = QuickRun(workdir, checkout / "Snakefile", configfile)
    quick.snakemake("--cores", "2", "--configfile", str(configfile))
    return quick


@pytest.fixture(scope="session")
def quick_run(quick_pipeline) -> Path:
    """The working directory of the session's quick run (quick_pipeline)."""
    return quick_pipeline.workdir


@pytest.fixture(scope="session")
def dry_run(tmp_path_factory):
    """``dry_run(*args)``: the finished `snakemake -n *args` (in an empty working directory), run
    once per session for each distinct ``args`` and shared by every test that inspects it.
    ``dry_run()`` is the default config (config/config.yaml); ``dry_run_of`` names a config."""
    done: dict[tuple[str, ...], subprocess.CompletedProcess] = {}

    def run(*args: str) -> subprocess.CompletedProcess:
        if args not in done:
            done[args] = snakemake("-n", *args, cwd=tmp_path_factory.mktemp("dry-run"))
        return done[args]

    return run


@pytest.fixture(scope="session")
def dry_run_of(dry_run):
    """``dry_run_of(name)``: the shared dry run of config/<name>. config.yaml is the Snakefile's
    default config, so its dry run is the plain `snakemake -n` (what `make reproduce` plans)."""

    def run(name: str) -> subprocess.CompletedProcess:
        if name == "config.yaml":
            return dry_run()
        return dry_run("--configfile", str(REPO / "config" / name))

    return run


@pytest.fixture
def quick_config_copy(tmp_path) -> Path:
    dst = tmp_path / "quick.yaml"
    shutil.copy(QUICK_CONFIG, dst)
    return dst
