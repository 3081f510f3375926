"""The paper's claims (paper/claims.yaml) and their verdicts against this run's results.

Three verdicts: "reproduced", "not reproduced", and "not measurable here" (with the reason, e.g. the
claim's dataset is not among the run's datasets). Numeric claims compare a measured value with the
reported one; structural claims are decided by a check in CHECKS that reads the results, the saved
models and the model's source code, never by a value typed into the YAML.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from memnet.report.results import ANY, MAIN_MEMNET, saved_models, select

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_MEASURABLE = "not measurable here"
AT_THIS_SCALE = "not measurable at this scale"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_MEASURABLE, AT_THIS_SCALE)

KINDS = ("numeric", "structural")
COMPARISONS = ("within", "at_least", "at_most")


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    source: str
    kind: str
    dataset: str | None = None
    select: dict = field(default_factory=dict)
    metric: str | None = None
    reported: float | None = None
    tolerance: float = 0.0
    comparison: str = "within"
    check: str | None = None
    evidence: str | None = None
    reported_neurons: tuple[float, float] | None = None
    reference: dict = field(default_factory=dict)  # close_to_reference: the row compared with
    ours: bool = False  # a finding of this project (claims.yaml `findings:`), not the paper's
    # the least scale that measures the claim: {n_train: images, n_neurons: neurons}; a run below
    # it gets "not measurable at this scale", never "not reproduced"
    scale: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    id: str
    verdict: str
    measured: float | None
    detail: str


@dataclass
class Evidence:
    """What a verdict may look at: the result tables, the saved models, the model's source.

    ``models`` are the files of the saved main/memnet/paper models: each .npz, and the metrics
    .json of the run that trained it (same path, .json) when it is among them.
    """

    summary: pd.DataFrame
    runs: pd.DataFrame
    models: list[Path] = field(default_factory=list)
    model_source: Path | None = None  # memnet/model.py unless given (tests point elsewhere)
    local_source: Path | None = None  # memnet/local.py unless given
    local_model: type | None = None  # the class the local checks probe (LocalMemoryNetwork)
    # datasets whose data only stands in for the real one (datasets.stand_in_reason): why
    stand_ins: dict[str, str] = field(default_factory=dict)

    @property
    def datasets(self) -> list[str]:
        return sorted(set(self.runs["dataset"]) | set(self.summary["dataset"]))


# ---------------------------------------------------------------------------------------------
# Loading


def _read_yaml(f, path) -> dict:
    try:
        doc = yaml.safe_load(f) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping with 'claims:' (and 'findings:', 'anchors:')")
    return doc


def load_claims(path: str | Path) -> list[Claim]:
    """Read and validate claims.yaml: the paper's `claims:`, then our own `findings:`.

    One clear error names the first bad entry.
    """
    with open(path) as f:
        doc = _read_yaml(f, path)
    entries = doc.get("claims")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a top-level 'claims:' list of claims")
    findings = doc.get("findings") or []
    if not isinstance(findings, list):
        raise ValueError(f"{path}: 'findings:' must be a list, like 'claims:'")
    claims, seen = [], set()
    for section, items in (("claims", entries), ("findings", findings)):
        for i, entry in enumerate(items):
            if not isinstance(entry, dict):
                raise ValueError(f"{path}: {section} #{i + 1} must be a mapping, not {entry!r}")
            where = f"{path}: {section} #{i + 1} ({entry.get('id', 'no id')})"
            try:
                claim = Claim(**entry, ours=section == "findings")
            except TypeError as err:
                raise ValueError(
                    f"{where}: {err}; the header of claims.yaml lists the keys"
                ) from None
            problem = _problem(claim)
            if claim.id in seen:
                problem = "duplicate id"
            if problem:
                raise ValueError(f"{where}: {problem}")
            seen.add(claim.id)
            claims.append(claim)
    return claims


ANCHOR_KEYS = {"dataset", "method", "accuracy", "source"}


def load_anchors(path: str | Path) -> list[dict]:
    """The published class-incremental results of other methods (claims.yaml `anchors:`): shown
    beside our measurements as anchors from another setup, never mixed with them."""
    with open(path) as f:
        doc = _read_yaml(f, path)
    anchors = doc.get("anchors") or []
    for i, anchor in enumerate(anchors):
        missing = ANCHOR_KEYS - set(anchor) if isinstance(anchor, dict) else ANCHOR_KEYS
        if missing:
            raise ValueError(f"{path}: anchors #{i + 1} lacks {sorted(missing)}")
        if not 0 <= anchor["accuracy"] <= 1:
            raise ValueError(f"{path}: anchors #{i + 1}: accuracy must be a fraction in [0, 1]")
    return anchors


def _problem(claim: Claim) -> str | None:
    if claim.kind not in KINDS:
        return f"kind must be one of {KINDS}, not {claim.kind!r}"
    if claim.kind == "numeric":
        if claim.metric is None or claim.reported is None:
            return "a numeric claim needs 'metric' and 'reported'"
        if claim.comparison not in COMPARISONS:
            return f"comparison must be one of {COMPARISONS}, not {claim.comparison!r}"
        if not claim.select:
            return "a numeric claim needs 'select' (experiment, model, variant)"
    elif claim.check not in CHECKS:
        return f"check must be one of {sorted(CHECKS)}, not {claim.check!r}"
    return None


# ---------------------------------------------------------------------------------------------
# Verdicts


def evaluate_all(claims: list[Claim], evidence: Evidence) -> list[Verdict]:
    return [evaluate(claim, evidence) for claim in claims]


def evaluate(claim: Claim, evidence: Evidence) -> Verdict:
    if claim.dataset is not None and claim.dataset not in evidence.datasets:
        have = ", ".join(evidence.datasets) or "none"
        reason = f"{claim.dataset} is not among this run's datasets ({have})"
        return Verdict(claim.id, NOT_MEASURABLE, None, reason)
    if not claim.ours and claim.dataset in evidence.stand_ins:
        return Verdict(claim.id, NOT_MEASURABLE, None, evidence.stand_ins[claim.dataset])
    if claim.kind == "numeric":
        return _numeric(claim, evidence)
    return CHECKS[claim.check](claim, evidence)


def compare(measured: float, reported: float, tolerance: float, comparison: str) -> bool:
    if comparison == "within":
        return abs(measured - reported) <= tolerance + 1e-12
    if comparison == "at_least":
        return measured >= reported - tolerance - 1e-12
    return measured <= reported + tolerance + 1e-12


PERCENT_METRICS = ("accuracy", "forgetting")


def fmt_value(metric: str, value: float) -> str:
    return f"{100 * value:.2f}%" if metric in PERCENT_METRICS else f"{value:,.0f}"


def below_scale(claim: Claim, runs: pd.DataFrame) -> str | None:
    """Why the runs of ``claim``'s measurement are below the scale it is about (claims.yaml
    `scale`: training images, neurons), or None."""
    rows = select(runs, claim.dataset, **claim.select)
    if rows.empty or not claim.scale:
        return None
    have = []
    n_train = int(rows["n_train"].max())
    if n_train < claim.scale.get("n_train", 0):
        have.append(f"{n_train:,} training images (the claim: {claim.scale['n_train']:,})")
    params = json.loads(rows["params"].iloc[0]) if isinstance(rows["params"].iloc[0], str) else {}
    neurons = params.get("n_neurons")
    if neurons is not None and neurons < claim.scale.get("n_neurons", 0):
        have.append(f"{neurons:,} neurons (the claim: {claim.scale['n_neurons']:,} or more)")
    if not have:
        return None
    return f"this run has {' and '.join(have)}; the paper's config (config/config.yaml) measures it"


def _numeric(claim: Claim, ev: Evidence) -> Verdict:
    if (why := below_scale(claim, ev.runs)) is not None:
        return Verdict(claim.id, AT_THIS_SCALE, None, why)
    what = "/".join(str(v) for v in claim.select.values())
    if claim.metric == "accuracy":
        rows = select(ev.summary, claim.dataset, **claim.select)
        if rows.empty:
            return _missing(claim, what)
        row = rows.iloc[0]
        measured, n = float(row["accuracy_mean"]), int(row["n_seeds"])
        spread = (
            f" (95% CI {fmt_value('accuracy', row['accuracy_ci_low'])}"
            f" to {fmt_value('accuracy', row['accuracy_ci_high'])})"
            if n > 1 and not math.isnan(row["accuracy_ci_low"])
            else ""
        )
    else:
        rows = select(ev.runs, claim.dataset, **claim.select)
        values = rows[claim.metric].dropna() if claim.metric in rows else pd.Series(dtype=float)
        if values.empty:
            return _missing(claim, f"{claim.metric} of {what}")
        measured, n, spread = float(values.mean()), len(values), ""
    ok = compare(measured, claim.reported, claim.tolerance, claim.comparison)
    rule = {"within": "within", "at_least": "at least", "at_most": "at most"}[claim.comparison]
    target = fmt_value(claim.metric, claim.reported)
    tol = f" ± {fmt_value(claim.metric, claim.tolerance)}" if claim.tolerance else ""
    detail = (
        f"{fmt_value(claim.metric, measured)} mean over {n} seed{'s' * (n != 1)}{spread}; "
        f"needs {rule} {target}{tol}"
    )
    return Verdict(claim.id, REPRODUCED if ok else NOT_REPRODUCED, measured, detail)


def _missing(claim: Claim, what: str) -> Verdict:
    reason = f"no {what} results for {claim.dataset} in this run"
    return Verdict(claim.id, NOT_MEASURABLE, None, reason)


# ---------------------------------------------------------------------------------------------
# Structural checks: each reads the evidence and returns a verdict with what it looked at.

Check = Callable[[Claim, Evidence], Verdict]
CHECKS: dict[str, Check] = {}
CHECK_UNITS = {
    "faster_than_backprop": "seconds",
    "little_data": "accuracy",
    "close_to_reference": "accuracy",
    "forgetting": "forgetting",  # close_to_reference on forgetting: a difference in points
}  # of `measured`


def check(fn: Check) -> Check:
    CHECKS[fn.__name__] = fn
    return fn


def _memnet_runs(ev: Evidence) -> pd.DataFrame:
    return select(ev.runs, model="memnet", x=ANY)


def _saved_models(ev: Evidence):
    """(dataset, seed, model, n_train) for every saved model of the evidence.

    n_train comes from the metrics file of the run that trained it, else None.
    """
    found = saved_models(ev.models)
    if not found:
        return []
    from memnet.models.memory.network import MemoryNetwork

    return [(m.dataset, m.seed, MemoryNetwork.load(m.path), m.n_train) for m in found]


def _load_time_nodes(tree: ast.AST):
    """Every node that runs when the module loads: all but the bodies of functions."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        yield node
        yield from _load_time_nodes(node)


def model_sources(
    root: Path | None = None, module: str = "memnet.models.memory.network"
) -> list[Path]:
    """memnet/model.py (``root``, else ``module``'s file) and every memnet module it imports when it
    loads, transitively (the code that learns). Imports inside functions are left out: they load
    only when called (config validation imports the experiment runner, which can make any
    baseline)."""
    if root is None:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            return []
        root = Path(spec.origin)
    package = root.parent
    found, todo = [], [root]
    while todo:
        path = todo.pop()
        if path in found or not path.exists():
            continue
        found.append(path)
        for node in _load_time_nodes(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == "memnet":
                todo += [package / f"{alias.name}.py" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("memnet."):
                todo.append(package / f"{node.module.split('.', 1)[1]}.py")
            elif isinstance(node, ast.Import):
                todo += [
                    package / f"{alias.name.split('.', 1)[1]}.py"
                    for alias in node.names
                    if alias.name.startswith("memnet.")
                ]
    return found


def _source_names(path: Path) -> tuple[set[str], set[str]]:
    """(imported top-level modules, every referenced attribute or name) in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    modules, names = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Name):
            names.add(node.id)
    return modules, names


def _flag_problem(runs: pd.DataFrame, column: str, expected) -> str | None:
    bad = runs.drop(select(runs, **{column: expected}, x=ANY).index)
    if bad.empty:
        return None
    first = bad.iloc[0]
    return (
        f"{len(bad)} memnet run(s) record {column}={first[column]} "
        f"(e.g. {first['dataset']}/{first['experiment']}/{first['variant']} seed {first['seed']})"
    )


def _source_check(
    ev: Evidence, banned_modules: set[str], banned_names: set[str], what: str, local=False
):
    """(problem or None, description) of a static scan of the model's source files (``local``:
    the locally connected model's)."""
    if local:
        paths = model_sources(ev.local_source, "memnet.models.memory.local")
        paths += model_sources(ev.local_source, "memnet.models.memory.hierarchy")
    else:
        paths = model_sources(ev.model_source)
    if not paths:
        return None, ""
    for path in paths:
        modules, names = _source_names(path)
        hits = sorted(modules & banned_modules) + sorted(
            n for n in names if n.lower() in banned_names
        )
        if hits:
            return f"{path.name} uses {', '.join(hits)}", ""
    files = ", ".join(p.name for p in paths)
    return None, f"{what} in {files}"


def _structural(claim: Claim, problems: list[str | None], facts: list[str]) -> Verdict:
    problems = [p for p in problems if p]
    if problems:
        return Verdict(claim.id, NOT_REPRODUCED, None, "; ".join(problems))
    evidence = f"; proven by {claim.evidence}" if claim.evidence else ""
    return Verdict(claim.id, REPRODUCED, None, "; ".join(f for f in facts if f) + evidence)


@check
def close_to_reference(claim: Claim, ev: Evidence) -> Verdict:
    """The mean over seeds of ``metric`` (accuracy unless given) of ``select`` is within
    ``tolerance`` of that of ``reference`` (from summary.csv); ``measured`` is the difference.
    With ``comparison: at_most`` it may be lower by any amount."""
    metric = claim.metric or "accuracy"
    column = f"{metric}_mean"
    rows = select(ev.summary, claim.dataset, **claim.select)
    refs = select(ev.summary, claim.dataset, **claim.reference)
    if rows.empty or refs.empty:
        missing = "/".join(
            str(v) for v in (claim.select if rows.empty else claim.reference).values()
        )
        return _missing(claim, missing)
    measured, reference = float(rows.iloc[0][column]), float(refs.iloc[0][column])
    difference = measured - reference
    ok = compare(difference, 0.0, claim.tolerance, claim.comparison)
    rule = "at most" if claim.comparison == "at_most" else "within ±"
    detail = (
        f"{metric} {fmt_value(metric, measured)} against {fmt_value(metric, reference)} "
        f"({'/'.join(map(str, claim.reference.values()))}): {100 * difference:+.2f} points; "
        f"needs {rule}{'' if rule.endswith('±') else ' +'}{100 * claim.tolerance:.2f}"
    )
    return Verdict(claim.id, REPRODUCED if ok else NOT_REPRODUCED, difference, detail)


AUTOGRAD = {"torch", "jax", "tensorflow", "autograd", "keras"}


@check
def single_pass(claim: Claim, ev: Evidence) -> Verdict:
    """Every saved model was presented exactly n_train samples and absorbed at most that many."""
    runs = _memnet_runs(ev)
    if runs.empty:
        return Verdict(claim.id, NOT_MEASURABLE, None, "no Memory Network runs in this run")
    problems = [_flag_problem(runs, "n_passes", 1)]
    models = _saved_models(ev)
    for dataset, seed, model, n_train in models:
        if n_train is None:
            row = select(runs, dataset, seed=seed, **MAIN_MEMNET)
            if row.empty:
                continue
            n_train = int(row.iloc[0]["n_train"])
        seen, absorbed = int(model.n_seen_), int(model.hits_.sum())
        if seen != n_train or absorbed > n_train:
            problems.append(
                f"{dataset} seed {seed}: saw {seen} samples and absorbed {absorbed} "
                f"for n_train={n_train}"
            )
    facts = [f"{len(runs)} memnet runs record one pass"]
    if models:
        facts.append(f"each of {len(models)} saved models saw exactly its n_train samples")
    return _structural(claim, problems, facts)


@check
def no_backprop(claim: Claim, ev: Evidence) -> Verdict:
    """No run records backprop, and the model's source uses no autograd framework or gradient."""
    runs = _memnet_runs(ev)
    if runs.empty:
        return Verdict(claim.id, NOT_MEASURABLE, None, "no Memory Network runs in this run")
    source_problem, source_fact = _source_check(
        ev, AUTOGRAD, {"backward", "grad", "autograd"}, "no autograd framework or gradient"
    )
    problems = [_flag_problem(runs, "uses_backprop", False), source_problem]
    facts = [f"{len(runs)} memnet runs record no backprop", source_fact]
    return _structural(claim, problems, facts)


@check
def no_weight_sharing(claim: Claim, ev: Evidence) -> Verdict:
    """Each neuron owns a full-size memory; no convolution in the source; no run records sharing."""
    runs = _memnet_runs(ev)
    if runs.empty:
        return Verdict(claim.id, NOT_MEASURABLE, None, "no Memory Network runs in this run")
    source_problem, source_fact = _source_check(
        ev, AUTOGRAD, CONVOLUTION, "no convolution or autograd layer"
    )
    problems = [_flag_problem(runs, "uses_weight_sharing", False), source_problem]
    models = _saved_models(ev)
    for dataset, seed, model, _ in models:
        c, h, w = model.image_shape_
        if model.memories_.shape != (model.n_born_, c, h * w):
            problems.append(
                f"{dataset} seed {seed}: memories shape {model.memories_.shape}, "
                f"not one full image per neuron {(model.n_born_, c, h * w)}"
            )
    facts = [f"{len(runs)} memnet runs record no weight sharing", source_fact]
    if models:
        facts.append(f"one full-size memory per neuron in {len(models)} saved models")
    return _structural(claim, problems, facts)


CONVOLUTION = {
    "convolve", "conv1d", "conv2d", "correlate", "correlate2d", "convolve2d", "fftconvolve",
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The locally connected Memory Network (ours): checks that probe its structure. Each fits the model
# with the parameters a run recorded (each bank's budget cut to PROBE_BUDGET) on PROBE_SAMPLES
# seeded random images of the run's dataset's shape, and looks at what it learnt.

PROBE_SAMPLES, PROBE_BUDGET, PROBE_CLASSES = 200, 5, 10


def _local_runs(ev: Evidence, claim: Claim) -> pd.DataFrame:
    """The runs a local check reads: the locally connected model's, or those ``claim.select``
    names (the hierarchical model's, whose layer 1 is a locally connected model)."""
    return select(ev.runs, **{"model": "local", **claim.select, "x": ANY})


def _local_probes(ev: Evidence, runs: pd.DataFrame):
    """(model, X, y) for each distinct (dataset, parameters) of the local runs: the local model
    with those parameters (budgets cut to PROBE_BUDGET), fitted on a probe of that shape."""
    import json

    import numpy as np

    from memnet import datasets
    from memnet.models.registry import family

    cls = ev.local_model
    if cls is None:
        cls = family(runs["model"].iloc[0]).load_class()
    for dataset, text in dict.fromkeys(
        zip(runs["dataset"], runs["params"].astype(str), strict=True)
    ):
        params = json.loads(text)
        budget = params.get("n_per_bank", PROBE_BUDGET)
        params["n_per_bank"] = (
            [min(b, PROBE_BUDGET) for b in budget] if isinstance(budget, list)
            else min(budget, PROBE_BUDGET)
        )  # fmt: skip
        spec = datasets.REGISTRY.get(dataset)
        shape = spec.image_shape if spec is not None else (1, 28, 28)
        rng = np.random.default_rng(0)
        X = rng.random((PROBE_SAMPLES, *shape), dtype=np.float32)
        y = np.arange(PROBE_SAMPLES) % PROBE_CLASSES
        fitted = cls.from_params(params, random_state=0, n_threads=1).fit(X, y)
        yield getattr(fitted, "layer1_", fitted), X, y, fitted


@check
def local_no_weight_sharing(claim: Claim, ev: Evidence) -> Verdict:
    """The locally connected model's memories are each location's own: no run records sharing, its
    source has no convolution; fitted on a probe, each location keeps memory arrays of its own
    (no two locations' arrays even span common addresses) that differ between locations, and changing one
    location's memories changes that location's distances and no other's."""
    runs = _local_runs(ev, claim)
    if runs.empty:
        return Verdict(
            claim.id, NOT_MEASURABLE, None, "no locally connected model runs in this run"
        )
    flags = _flag_problem(runs, "uses_weight_sharing", False)
    source_problem, source_fact = _source_check(
        ev, AUTOGRAD, CONVOLUTION, "no convolution or autograd layer", local=True
    )
    kind = runs["model"].iloc[0]
    problems = [flags and flags.replace("memnet run", f"{kind} run"), source_problem]
    n_locations, n_probes = 0, 0
    for model, X, _, _ in _local_probes(ev, runs):
        n_probes += 1
        n_locations += sum(len(sc.positions) for sc in model._scales)
        problems += _own_memories(model, X)
    facts = [
        f"{len(runs)} {kind} runs record no weight sharing",
        source_fact,
        f"{n_probes} probe fits (each parameter set of the runs), {n_locations} locations in all: "
        "each with memories of its own, which only its own distances read",
    ]
    return _structural(claim, problems, facts)


def _own_memories(model, X) -> list[str]:
    """What shows that a fitted local model's locations share memories (nothing if they don't)."""
    import numpy as np

    problems = []
    for s, scale in enumerate(model._scales):
        mem = scale.mem
        L = mem.shape[0]
        if L < 2:
            continue
        if any(np.may_share_memory(mem[a], mem[b]) for a in range(L) for b in range(a + 1, L)):
            problems.append(f"scale {s}: two locations' memories share storage")
        if all(np.array_equal(mem[0], mem[a]) for a in range(1, L)):
            problems.append(f"scale {s}: every location holds the same memories")
        Xp = np.ascontiguousarray(model._transform(X[:16]))
        before = model._location_distances(Xp, scale)
        saved = mem[0].copy()
        mem[0] += 1.0
        after = model._location_distances(Xp, scale)
        mem[0] = saved
        if not np.array_equal(before[1:], after[1:]) or np.array_equal(before[0], after[0]):
            problems.append(f"scale {s}: changing location 0's memories changed other locations")
    return problems


@check
def local_single_pass(claim: Claim, ev: Evidence) -> Verdict:
    """The locally connected model learns in one pass: every local run records one pass; fitted on
    a probe, each location's class bank was presented each of its class's samples exactly once
    and absorbed (births included) exactly that many."""
    import numpy as np

    runs = _local_runs(ev, claim)
    if runs.empty:
        return Verdict(
            claim.id, NOT_MEASURABLE, None, "no locally connected model runs in this run"
        )
    flags = _flag_problem(runs, "n_passes", 1)
    kind = runs["model"].iloc[0]
    problems = [flags and flags.replace("memnet run", f"{kind} run")]
    n_probes = 0
    for model, _, y, whole in _local_probes(ev, runs):
        n_probes += 1
        # a hierarchical model's layer 2 learns the samples from layer2_from on, each once
        after = len(y) - int(np.ceil(getattr(whole, "layer2_from", 0.0) * len(y)))
        if whole.n_passes != 1 or getattr(whole, "n_layer2_samples_", 0) > after:
            problems.append("its layer 2 was presented samples other than once")
        per_class = np.bincount(y, minlength=PROBE_CLASSES)
        for s, scale in enumerate(model._scales):
            if not (scale.seen == per_class).all():
                problems.append(f"scale {s}: a bank saw its class's samples other than once")
            if not (scale.hits.sum(axis=2) == scale.seen).all():
                problems.append(f"scale {s}: a bank absorbed other than the samples it saw")
    facts = [
        f"{len(runs)} {kind} runs record one pass",
        f"{n_probes} probe fits (each parameter set of the runs): every bank saw and absorbed "
        f"each of its class's {PROBE_SAMPLES // PROBE_CLASSES} samples once",
    ]
    return _structural(claim, problems, facts)


def _main_rows(ev: Evidence, dataset: str) -> tuple[pd.Series | None, pd.DataFrame]:
    memnet = select(ev.summary, dataset, **MAIN_MEMNET)
    backprop = _baselines(select(ev.summary, dataset, experiment="main", uses_backprop=True))
    return (memnet.iloc[0] if len(memnet) else None), backprop


def _baselines(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` without the peers (memnet.models.registry.peers): the paper's claims compare with
    its backprop baselines, not with a peer whose top layer alone is trained by gradient descent."""
    from memnet.models.registry import peers

    return rows[~rows["model"].isin(peers())]


@check
def faster_than_backprop(claim: Claim, ev: Evidence) -> Verdict:
    """Mean training time of memnet/paper below every backprop baseline's (main experiment)."""
    memnet, backprop = _main_rows(ev, claim.dataset)
    if memnet is None or backprop.empty:
        return Verdict(
            claim.id,
            NOT_MEASURABLE,
            None,
            f"needs main results of memnet/paper and a backprop baseline on {claim.dataset}",
        )
    ours = float(memnet["train_seconds_mean"])
    fastest = backprop.loc[backprop["train_seconds_mean"].idxmin()]
    label = f"{fastest['model']}/{fastest['variant']}"
    ok = ours < float(fastest["train_seconds_mean"])
    detail = (
        f"memnet {ours:.3g} s vs fastest backprop baseline {label} "
        f"{float(fastest['train_seconds_mean']):.3g} s"
    )
    return Verdict(claim.id, REPRODUCED if ok else NOT_REPRODUCED, ours, detail)


@check
def little_data(claim: Claim, ev: Evidence) -> Verdict:
    """At the smallest training set of the samples sweep, memnet beats every backprop baseline."""
    sweep = {"experiment": "samples", "x": ANY}
    memnet = select(ev.summary, claim.dataset, model="memnet", **sweep)
    backprop = _baselines(select(ev.summary, claim.dataset, uses_backprop=True, **sweep))
    common = sorted(set(memnet["x"].dropna()) & set(backprop["x"].dropna()))
    if not common:
        return Verdict(
            claim.id,
            NOT_MEASURABLE,
            None,
            f"needs a samples sweep of memnet and a backprop baseline on {claim.dataset}",
        )
    n = common[0]
    ours = float(select(memnet, x=n)["accuracy_mean"].iloc[0])
    rivals = select(backprop, x=n)
    best = rivals.loc[rivals["accuracy_mean"].idxmax()]
    ok = ours > float(best["accuracy_mean"])
    detail = (
        f"at {int(n)} training samples: memnet {fmt_value('accuracy', ours)} vs best backprop "
        f"baseline {best['model']}/{best['variant']} {fmt_value('accuracy', best['accuracy_mean'])}"
    )
    return Verdict(claim.id, REPRODUCED if ok else NOT_REPRODUCED, ours, detail)
