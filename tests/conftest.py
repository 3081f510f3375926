"""Shared fixtures: the repo, the dataset mirror, and one end-to-end run of config/quick.yaml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # lets tests import their fixture helpers


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


def snakemake(*args: str, cwd: Path, check: bool = True, timeout: int = 1800, env=None):
    """Run the repo's Snakefile with its working directory at ``cwd`` (the mirror from find_mirror)."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(cwd),
    ]
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


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory, mirror) -> Path:
    """One full run of config/quick.yaml on real MNIST; returns its working directory."""
    workdir = tmp_path_factory.mktemp("quick")
    snakemake("--cores", "2", "--configfile", str(REPO / "config" / "quick.yaml"), cwd=workdir)
    return workdir


@pytest.fixture
def quick_config_copy(tmp_path) -> Path:
    dst = tmp_path / "quick.yaml"
    shutil.copy(REPO / "config" / "quick.yaml", dst)
    return dst
