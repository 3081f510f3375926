"""The package's shape: no import circle, short modules, one catalogue per job that every other
place agrees with (the model registry, the outputs catalogue), and a complete package face."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import yaml

import memnet
from memnet.models import registry
from memnet.report import outputs

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "memnet"
MAX_LINES = 700


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The memnet modules that ``path`` imports, at any depth of its code (lazy imports too),
    except under ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m in modules} - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    files = [p for p in SRC.rglob("*.py")]
    modules = {module_name(p) for p in files}
    graph = {module_name(p): imports_of(p, modules) for p in files}
    # a package's __init__ is what `from memnet import x` runs; memnet's own is lazy (PEP 562)
    graph["memnet"] = set()
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_planted_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_import_graph_sees_the_real_imports():
    graph = import_graph()
    assert "memnet.models.registry" in graph["memnet.pipeline.plan"]
    assert "memnet.datasets.catalogue" in graph["memnet.datasets.fetch"]


def test_no_import_circle():
    assert find_cycle(import_graph()) is None


def test_no_module_is_over_700_lines():
    long = {
        str(p.relative_to(REPO)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_leaves_import_no_other_memnet_module():
    graph = import_graph()
    for leaf in ("memnet.schema", "memnet.io", "memnet.validation"):
        assert graph[leaf] == set(), leaf


def test_the_package_face_lists_and_gives_every_public_name():
    assert set(memnet.__all__) == {"__version__", *memnet._LAZY}
    for name in memnet.__all__:
        assert getattr(memnet, name) is not None
    for family in registry.FAMILIES.values():  # every shipped model class is on the face
        cls = family.load_class()
        assert getattr(memnet, cls.__name__) is cls


def test_every_shipped_family_builds_its_class():
    for name, family in registry.FAMILIES.items():
        model = registry.make_model(name, {}, seed=3, threads=1)
        assert type(model) is family.load_class()
        assert model.random_state == 3


def schema() -> dict:
    return yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def test_the_schema_names_exactly_the_shipped_families():
    listed = set(schema()["$defs"]["model_lists"]["properties"])
    assert listed == set(registry.FAMILIES)
    baselines = set(schema()["properties"]["baselines"]["properties"])
    assert baselines == {n for n, f in registry.FAMILIES.items() if f.variants == registry.BASELINE}


def _param_block(s: dict, name: str) -> set[str]:
    defs, props = s["$defs"], s["properties"]
    block = {
        "memnet": defs["memnet_params"],
        "local": defs["local_params"],
        "hierarchy": defs["hierarchy_params"],
    }.get(name)
    if block is None:
        block = props["baselines"]["properties"][name]["additionalProperties"]
        if "$ref" in block:
            block = defs[block["$ref"].rsplit("/", 1)[1]]
    return set(block.get("properties", {})) - {"only_datasets"}


@pytest.mark.parametrize("name", list(registry.FAMILIES))
def test_each_family_schema_block_is_its_class_constructor(name):
    cls = registry.FAMILIES[name].load_class()
    constructor = set(inspect.signature(cls).parameters) - {"random_state", "n_threads"}
    block = _param_block(schema(), name)
    assert block <= constructor, f"schema parameters {block - constructor} are not {cls.__name__}'s"
    if name in ("memnet", "local"):
        # every parameter a config may vary is in the schema, except what a run sets itself
        assert constructor - block <= {"expected_samples", "shuffle"}, constructor - block


def test_a_user_family_gets_a_label_and_a_style_of_its_own():
    config = {"model_families": {"logreg": {"class": "sklearn.linear_model.LogisticRegression"}}}
    known = registry.families(config)
    assert list(known)[-1] == "logreg" and not known["logreg"].builtin
    shipped = {registry.style(n) for n in registry.FAMILIES}
    assert registry.style("logreg") not in shipped
    with pytest.raises(ValueError, match="a family memnet ships"):
        registry.families({"model_families": {"knn": {"class": "x.Y"}}})


def test_every_output_has_one_caption_and_a_builder():
    for output in [*outputs.TABLES.values(), *outputs.FIGURES.values()]:
        assert (REPO / output.caption_file).is_file(), output.caption_file
        assert callable(outputs.load_builder(output)), output.builder
    captions = {p.stem for p in (REPO / outputs.CAPTIONS_DIR).glob("*.rst")}
    stems = {*outputs.TABLES, *outputs.FIGURES}
    assert captions - stems <= {"workflow", "replication", "notebooks"}  # no orphan caption


def test_per_dataset_figures_map_back_to_their_entry():
    assert outputs.output_of("F3_ablations_cifar10").stem == "F3_ablations"
    assert outputs.figure_names(["a", "b"]).count("F4_memories_b") == 1
    with pytest.raises(KeyError, match="not an output"):
        outputs.output_of("F9_nothing")
