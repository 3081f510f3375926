"""Which code made a result: the git commit and whether the tree had uncommitted changes, and a
hash of the memnet source that ran (a leaf: no memnet imports, cheap for the Snakefile).

``source_hash()`` hashes every module of the package; ``source_hash("memnet.report.tables")``
hashes that module and every memnet module it imports, at any depth (lazy imports included), so
that a Snakemake rule can carry the hash of the code its step runs as a ``params:`` entry and be
rerun when that code changes.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import subprocess
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def git_state() -> dict:
    """{"commit": the HEAD commit or "unknown", "dirty": whether tracked files differ from it
    (None where there is no git checkout)}."""

    def git(*args):
        try:
            proc = subprocess.run(
                ["git", *args], cwd=PACKAGE, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": "unknown", "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _module_file(name: str) -> Path | None:
    parts = name.split(".")[1:]
    base = PACKAGE.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _imports(path: Path) -> frozenset[str]:
    names = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # imports for type checkers only do not run
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    # `from memnet import x` runs memnet/__init__.py, whose names load lazily: only x counts
    return frozenset(n for n in names if n.startswith("memnet."))


def closure(module: str) -> list[Path]:
    """The source files of ``module`` and of every memnet module it imports, sorted."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if not name.startswith("memnet."):
            continue  # a user's own module (model_families): not memnet's code
        path = _module_file(name)
        if path is None or path in seen:
            continue
        seen.add(path)
        todo += sorted(_imports(path))
    return sorted(seen)


@functools.cache
def source_hash(*modules: str) -> str:
    """sha256 (16 hex digits) of the memnet source: all of it, or the closures of ``modules``
    (module names, or ``module:attribute`` as the registries name classes and builders)."""
    if modules:
        files = sorted({f for m in modules for f in closure(m.partition(":")[0])})
    else:
        files = sorted(PACKAGE.rglob("*.py"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def step_hash(*modules: str) -> str:
    """The hash of the code a pipeline step runs: the closures of ``modules`` and the `memnet`
    command itself (cli.py, whose subcommands import their modules lazily). A rule carries it as a
    ``params:`` entry, so that Snakemake reruns the step when that code changes."""
    digest = hashlib.sha256(source_hash(*modules).encode())
    digest.update((PACKAGE / "cli.py").read_bytes())
    return digest.hexdigest()[:16]
