"""The repository stands on its own: it names no folder outside itself, the README's library example
runs, ``import memnet`` stays cheap, and every public name of the package resolves."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import memnet

REPO = Path(__file__).resolve().parents[1]
# Paths that exist only beside the developers' checkout, never in a user's clone (spelt in two
# pieces so that this file does not hold them itself).
OUTSIDE = ("../" + "shared", "shared" + "/spec", "shared" + "/datasets")
HEAVY = ("numba", "torch", "faiss", "sklearn", "matplotlib")


def repository_files() -> list[Path]:
    """Tracked files and new ones git does not ignore (what a commit would give a user), less .ci/."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    proc = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"{REPO} is not a git checkout: {proc.stderr.strip()}")
    names = [n for n in proc.stdout.split("\0") if n and not n.startswith(".ci/")]
    return [REPO / n for n in names if (REPO / n).is_file()]


def references_outside(paths: list[Path], root: Path) -> list[str]:
    """'file:line: text' for every line of the given files that names a path in OUTSIDE."""
    found = []
    for path in paths:
        text = path.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if any(needle in line for needle in OUTSIDE):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()[:120]}")
    return found


def test_the_search_for_outside_paths_finds_one(tmp_path):
    """The check below is only meaningful if it catches a planted reference."""
    (tmp_path / "clean.md").write_text("see docs/model.md\n")
    (tmp_path / "bad.py").write_text(f"x = 1\nPATH = '{OUTSIDE[1]}/memory-network.md'\n")
    found = references_outside(sorted(tmp_path.iterdir()), tmp_path)
    assert found == [f"bad.py:2: PATH = '{OUTSIDE[1]}/memory-network.md'"]


def test_no_file_of_the_repository_names_a_folder_outside_it():
    files = repository_files()
    assert any(p.name == "README.md" for p in files)  # the listing really holds the repository
    found = references_outside(files, REPO)
    assert not found, "paths that a user's clone does not have:\n" + "\n".join(found)


# ---- the README's library example ------------------------------------------------------------


def readme_examples() -> list[str]:
    """The README's python code blocks that use memnet."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    return [b for b in blocks if re.search(r"^\s*(from|import) memnet\b", b, flags=re.M)]


def memnet_imports(code: str) -> list[tuple[str, str | None]]:
    """(module, name) for each name the code imports from memnet (name None: a module import)."""
    out = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "memnet":
            out += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.split(".")[0] == "memnet"]
    return out


def test_the_readme_has_a_library_example_that_imports_from_memnet():
    examples = readme_examples()
    assert examples, "README.md has no ```python block that imports memnet"
    assert any(
        module == "memnet" and name for ex in examples for module, name in memnet_imports(ex)
    )


def test_every_name_the_readme_imports_from_memnet_resolves():
    for example in readme_examples():
        for module_name, name in memnet_imports(example):
            module = importlib.import_module(module_name)
            if name is not None:
                assert hasattr(module, name), f"README: `from {module_name} import {name}` fails"


def tiny_dataset(path: Path, seed: int = 0) -> None:
    """A prepared dataset file of MNIST's shape: 10 classes, each a noisy template."""
    from memnet.datasets import write_npz

    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (10, 1, 28, 28))

    def part(n):
        y = np.arange(n) % 10
        noise = rng.integers(-40, 41, (n, 1, 28, 28))
        return np.clip(templates[y] + noise, 0, 255).astype(np.uint8), y.astype(np.int64)

    (x_train, y_train), (x_test, y_test) = part(300), part(100)
    classes = [str(c) for c in range(10)]
    write_npz(path, path.stem, x_train, y_train, x_test, y_test, classes, {"test": "tiny"})


@pytest.mark.parametrize("index", range(len(readme_examples())))
def test_the_readme_library_example_runs(tmp_path, index):
    """Each example runs as written, in a fresh process, on a tiny dataset at the paths it reads;
    a score it prints is an accuracy, and the templates make it a high one."""
    code = readme_examples()[index]
    for rel in set(re.findall(r"[\"']([\w./-]+\.npz)[\"']", code)):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        tiny_dataset(tmp_path / rel)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, check=False)  # fmt: skip
    assert proc.returncode == 0, f"README example failed:\n{code}\n{proc.stderr[-4000:]}"
    numbers = [float(v) for v in re.findall(r"\d+\.\d+", proc.stdout)]
    if "score(" in code:
        assert numbers and 0.9 <= numbers[-1] <= 1.0, proc.stdout


# ---- the package's import and public names ---------------------------------------------------


def pipeline_modules() -> list[str]:
    """The memnet modules that the Snakefile and its rule files import (every job does)."""
    sources = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    found = set()
    for source in sources:
        found |= set(re.findall(r"^\s*from (memnet[\w.]*) import", source.read_text(), re.M))
        found |= set(re.findall(r"^\s*import (memnet[\w.]*)", source.read_text(), re.M))
    return sorted(found)


def loaded_after(statements: str) -> list[str]:
    """Which HEAVY packages a fresh interpreter has loaded after running ``statements``."""
    code = f"{statements}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_memnet_and_the_pipeline_modules_load_neither_numba_nor_torch():
    modules = pipeline_modules()
    assert "memnet.pipeline.config" in modules  # the Snakefile validates its config with it
    imports = "\n".join(["import memnet", *(f"import {m}" for m in modules)])
    assert loaded_after(imports) == []


def test_the_first_use_of_a_lazy_name_imports_its_module():
    """The import check above can fail: numba does load, once a name needs it."""
    assert "numba" in loaded_after("import memnet\nmemnet.MemoryNetwork")


@pytest.mark.slow
def test_torch_loads_only_when_a_net_trains():
    assert "torch" not in loaded_after("import memnet\nmemnet.MLP")
    fit = (
        "import memnet, numpy as np\n"
        "memnet.MLP(random_state=0, n_threads=1, epochs=1, batch_size=4, lr=1e-3)"
        ".fit(np.zeros((4, 3), np.float32), np.arange(4) % 2)"
    )
    assert "torch" in loaded_after(fit)


def test_every_public_name_resolves_to_its_object():
    from memnet import datasets
    from memnet.models import baselines
    from memnet.models.memory import network as model

    assert memnet.__version__ == metadata.version("memnet")
    assert set(memnet.__all__) == {"__version__", *memnet._LAZY}  # each lazy name is public
    for name in memnet.__all__:
        assert getattr(memnet, name) is not None, name
    namespace: dict = {}
    exec("from memnet import *", namespace)
    assert set(memnet.__all__) <= set(namespace)
    assert memnet.MemoryNetwork is model.MemoryNetwork
    assert memnet.datasets is datasets
    assert memnet.load_dataset is datasets.load
    assert set(memnet.__all__) <= set(dir(memnet))
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        memnet.no_such_name  # noqa: B018
    # every public class of the baselines is exported
    classes = {
        n for n, obj in vars(baselines).items()
        if inspect.isclass(obj) and obj.__module__ == baselines.__name__ and not n.startswith("_")
    }  # fmt: skip
    assert classes and classes <= set(memnet.__all__)


def test_memory_network_from_the_package_fits_and_predicts():
    rng = np.random.default_rng(0)
    X = rng.random((60, 1, 4, 4), dtype=np.float32)
    y = np.arange(60) % 3
    model = memnet.MemoryNetwork(n_neurons=60, threshold="none", shuffle=False).fit(X, y)
    np.testing.assert_array_equal(model.predict(X), y)  # every sample is its own nearest memory
