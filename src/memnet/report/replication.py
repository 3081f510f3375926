"""The replication report (Markdown + self-contained HTML) and the executed review notebooks.

    memnet report --template paper/replication.md.j2 --runs results/tables/runs.csv \\
        --metrics results/runs/mnist/main/memnet/paper/seed0.json \\
        --tables results/tables/T1_main.csv results/tables/T1_main.md ... \\
        --figures results/figures/F1_neurons.png ... --captions workflow/report/T1_main.rst ... \\
        --datasets mnist cifar10 --out results/paper/replication.md
    memnet notebook --notebook notebooks/results.ipynb --out results/notebooks/results.ipynb \\
        -p results_dir=results -p model_path=results/runs/mnist/main/memnet/paper/seed0.npz

`render` fills the Jinja template with numbers read from the given result files only (tables T1-T4,
the figures, runs.csv and one run's metrics for versions), writes the Markdown, then the HTML with
every figure inlined as base64 so that the page stands alone; it reads no file it was not given.
`run_notebook` runs a notebook with papermill and converts the executed copy to HTML beside it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import jinja2
import markdown
import pandas as pd

from memnet.io import atomic_path, read_json, write_text
from memnet.report import tables
from memnet.report.outputs import TABLES, Output, figure_names, output_of
from memnet.report.results import MAIN_MEMNET, as_bool, dataset_label, load_runs, select

CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; color: #111; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.85rem; }
th, td { border-top: 1px solid #bbb; border-bottom: 1px solid #bbb; padding: 0.25rem 0.5rem; }
th { border-bottom: 2px solid #333; }
img { max-width: 100%; }
code { background: #f3f3f3; padding: 0 0.2rem; }
"""


# ---------------------------------------------------------------------------------------------
# The context: everything the template shows, read from the result files


def by_name(paths: Iterable[str | Path]) -> dict[str, Path]:
    """The given files by file name ("T1_main.md" -> its path); two files of one name are an error."""
    found: dict[str, Path] = {}
    for path in map(Path, paths):
        if path.name in found and found[path.name] != path:
            raise ValueError(f"two files named {path.name}: {found[path.name]} and {path}")
        found[path.name] = path
    return found


def _given(files: dict[str, Path], name: str, option: str) -> Path:
    if name not in files:
        raise FileNotFoundError(f"{name}: not among the files given to {option}; pass it there")
    return files[name]


def caption(captions: dict[str, Path], stem: str) -> str:
    """The caption of ``stem`` (workflow/report/<stem>.rst, if given), as one line of plain text."""
    path = captions.get(f"{stem}.rst")
    return " ".join(path.read_text().split()) if path is not None else ""


def _run_facts(runs: pd.DataFrame, metrics: Path | None) -> dict:
    datasets = list(dict.fromkeys(runs["dataset"]))
    facts = {
        "datasets": datasets,
        "dataset_labels": [dataset_label(d) for d in datasets],
        "seeds": sorted(int(s) for s in runs["seed"].unique()),
        "n_runs": len(runs),
        "experiments": list(dict.fromkeys(runs["experiment"])),
        "git_revision": "unknown",
        "versions": {},
    }
    main = select(runs, experiment="main")
    facts["sizes"] = [
        {
            "label": dataset_label(d),
            "n_train": f"{int(select(main, d).n_train.max()):,}",
            "n_test": f"{int(select(main, d).n_test.max()):,}",
        }
        for d in datasets
        if len(select(main, d))
    ]
    first = read_json(metrics) if metrics is not None else {}
    facts["versions"] = first.get("versions", {})
    facts["revisions"] = code_revisions(runs, first)
    facts["git_revision"] = ", ".join(r["commit"] for r in facts["revisions"])
    facts["provenance_warning"] = provenance_warning(facts["revisions"])
    return facts


def scale(runs: pd.DataFrame) -> str:
    """The scale of a run of the pipeline, from its runs: per dataset, the training and test
    images of the main experiment; the Memory Network's neurons (`paper`); the seeds."""
    parts = []
    main = select(runs, experiment="main")
    for d in dict.fromkeys(runs["dataset"]):
        here = select(main, d)
        if len(here):
            n_train, n_test = int(here.n_train.max()), int(here.n_test.max())
            parts.append(f"{dataset_label(d)} with {n_train:,} training and {n_test:,} test images")
    paper = _paper_params(runs)
    if "n_neurons" in paper:
        parts.append(f"the Memory Network with {int(paper['n_neurons']):,} neurons")
    seeds = sorted(int(s) for s in runs["seed"].unique())
    parts.append(f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}")
    return "; ".join(parts)


def _config_facts(config_file: str, runs: pd.DataFrame, out_md: Path) -> dict:
    return {"file": config_file, "results": Path(out_md).parent.as_posix(), "scale": scale(runs)}


def code_revisions(runs: pd.DataFrame, first: dict) -> list[dict]:
    """Every distinct (commit, dirty, source hash) among the runs (runs.csv's columns), or, for
    runs of a memnet that did not record them, the commit of the one metrics file given."""
    rows = runs[runs["git_revision"].astype(str) != "unknown"] if "git_revision" in runs else []
    if len(rows) == 0:
        return [{"commit": first.get("git_revision", "unknown"), "dirty": None, "source": None}]
    found = rows[["git_revision", "git_dirty", "source_hash"]].assign(
        git_dirty=as_bool(rows["git_dirty"])
    )
    found = found.astype(object).where(found.notna(), None).drop_duplicates()
    return [{"commit": c, "dirty": d, "source": h} for c, d, h in found.itertuples(index=False)]


def provenance_warning(revisions: list[dict]) -> str | None:
    """A warning when the runs come from more than one version of the code, or from a tree with
    uncommitted changes (their commit does not say which code ran)."""
    problems = []
    if len(revisions) > 1:
        problems.append(f"the runs come from {len(revisions)} different versions of the code")
    if any(r["dirty"] for r in revisions):
        problems.append("some runs were made from a tree with uncommitted changes")
    return "; ".join(problems) if problems else None


def _paper_params(runs: pd.DataFrame) -> dict:
    rows = select(runs, **MAIN_MEMNET)
    return json.loads(rows["params"].iloc[0]) if len(rows) else {}


def _headline(t1: pd.DataFrame, paper_datasets: set[str]) -> list[dict]:
    lines = []
    for dataset in dict.fromkeys(t1["dataset"]):
        here = select(t1, dataset)
        memnet = select(here, model="memnet", variant="paper")
        if memnet.empty:
            continue
        m = memnet.iloc[0]
        knn = select(here, model="knn", variant="k1-l2")
        ci = tables.pct_interval(m["accuracy_ci_low"], m["accuracy_ci_high"])
        lines.append(
            {
                "label": dataset_label(dataset),
                "ours": dataset not in paper_datasets,
                "memnet": tables.pct(m["accuracy_mean"]),
                "ci": "" if ci == "–" else ci,
                "n_seeds": int(m["n_seeds"]),
                "reported": ""
                if pd.isna(m["paper_reported"])
                else tables.pct(m["paper_reported"], 0),
                "knn": tables.pct(knn["accuracy_mean"].iloc[0]) if len(knn) else "",
            }
        )
    return lines


def _claims(t2: pd.DataFrame) -> list[dict]:
    display = tables.display_claims(t2)
    return [
        {
            "claim": row["Claim"],
            "source": row["Source"],
            "dataset": row["Dataset"],
            "reported": row["Reported"],
            "measured": row["Measured"],
            "verdict": row["Verdict"],
            "detail": str(row["Why"]).rstrip("."),
        }
        for _, row in display.iterrows()
    ]


def _figure_entry(output: Output, stem: str, title: str, png: Path, out_md: Path, captions) -> dict:
    return {
        "id": output.id,
        "ours": output.ours,
        "stem": stem,
        "title": title,
        "src": Path(os.path.relpath(png, out_md.parent)).as_posix(),
        "caption": caption(captions, output.stem),
    }


def build_context(
    runs_csv: Path,
    metrics: Path | None,
    table_files: Iterable[str | Path],
    figure_files: Iterable[str | Path],
    caption_files: Iterable[str | Path],
    datasets: list[str],
    out_md: Path,
    extras: Iterable[Output] = (),
    config_file: str | None = None,
) -> dict:
    """What the template shows, from exactly the files given: runs.csv, one run's metrics (versions
    and git revision), the tables' .csv and .md, each figure's .png and the captions' .rst."""
    out_md = Path(out_md)
    table_files, figure_files = by_name(table_files), by_name(figure_files)
    captions = by_name(caption_files)
    runs = load_runs(runs_csv)
    t1 = pd.read_csv(_given(table_files, "T1_main.csv", "--tables"))
    t2 = pd.read_csv(
        _given(table_files, "T2_claims.csv", "--tables"), keep_default_na=False, na_values=[""]
    )
    counts = t2["verdict"].value_counts()
    paper_datasets = set(t2["dataset"].dropna()) - {"all"}
    beyond_datasets = [d for d in datasets if d not in paper_datasets]
    figures = []
    for stem in figure_names(datasets):
        png = figure_files.get(f"{stem}.png")
        if png is None or not png.exists():
            raise FileNotFoundError(
                f"{stem}.png: figure missing; draw it with `memnet figures` and pass it to --figures"
            )
        output = output_of(stem)
        title = output.title
        entry = _figure_entry(output, stem, title, png, out_md, captions)
        if output.per_dataset:
            dataset = stem.removeprefix(output.stem + "_")
            entry["title"] += f" ({dataset_label(dataset)})"
            # a dataset the paper does not study: even its figures of the paper's kind are ours
            entry["ours"] = entry["ours"] or dataset in beyond_datasets
        figures.append(entry)
    all_tables = [
        {
            "id": output.id,
            "ours": output.ours,
            "title": output.title,
            "markdown": _given(table_files, f"{stem}.md", "--tables").read_text(),
            "caption": caption(captions, stem),
        }
        for stem, output in TABLES.items()
    ]
    for extra in extras:
        path = _given({**figure_files, **table_files}, Path(extra.file).name, "--figures")
        if extra.kind == "figure":
            figures.append(_figure_entry(extra, extra.stem, extra.title, path, out_md, captions))
        else:
            all_tables.append(
                {
                    "id": extra.id,
                    "ours": extra.ours,
                    "title": extra.title,
                    "markdown": path.read_text(),
                    "caption": caption(captions, extra.stem),
                }
            )
    t7 = pd.read_csv(
        _given(table_files, "T7_findings.csv", "--tables"), keep_default_na=False, na_values=[""]
    )
    return {
        "run": _run_facts(runs, metrics),
        "config": None if config_file is None else _config_facts(config_file, runs, out_md),
        "verdict_counts": {v: int(counts[v]) for v in counts.index},
        "headline": _headline(t1, paper_datasets),
        "beyond_datasets": [dataset_label(d) for d in beyond_datasets],
        "claims": _claims(t2),
        "findings": _claims(t7) if len(t7) else [],
        "paper_params": _paper_params(runs),
        "tables": [t for t in all_tables if not t["ours"]],
        "figures": [f for f in figures if not f["ours"]],
        "beyond_tables": [t for t in all_tables if t["ours"]],
        "beyond_figures": [f for f in figures if f["ours"]],
    }


# ---------------------------------------------------------------------------------------------
# Rendering


def render_markdown(template: Path, context: dict) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(template).parent)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    text = env.get_template(Path(template).name).render(**context)
    return re.sub(r"\n{3,}", "\n\n", text)


def inline_images(html: str, base_dir: Path) -> str:
    """Replace every <img src="relative.png"> by a base64 data URI, so the HTML stands alone."""

    def embed(match: re.Match) -> str:
        src = match.group(2)
        if src.startswith("data:"):
            return match.group(0)
        data = base64.b64encode((Path(base_dir) / src).read_bytes()).decode("ascii")
        return f"{match.group(1)}data:image/png;base64,{data}{match.group(3)}"

    return re.sub(r'(<img[^>]*?src=")([^"]+)(")', embed, html)


def to_html(md_text: str, base_dir: Path, title: str) -> str:
    body = markdown.markdown(md_text, extensions=["tables", "toc"])
    body = inline_images(body, base_dir)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
        f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def render(template: Path, context: dict, out_md: Path) -> tuple[Path, Path]:
    """``out_md`` and the self-contained HTML beside it: ``template`` filled with ``context``
    (``build_context(..., out_md)``, whose figure links are relative to ``out_md``)."""
    out_md = Path(out_md)
    text = render_markdown(template, context)
    write_text(out_md, text)
    out_html = out_md.with_suffix(".html")
    write_text(out_html, to_html(text, out_md.parent, "Replication report: Memory Networks"))
    return out_md, out_html


# ---------------------------------------------------------------------------------------------
# Notebooks


def run_notebook(
    notebook: Path,
    out_ipynb: Path,
    parameters: dict,
    cwd: Path | None = None,
    kernel: str = "python3",
) -> tuple[Path, Path]:
    """Execute ``notebook`` with papermill into ``out_ipynb``, then convert it to HTML beside it."""
    import papermill
    from nbconvert import HTMLExporter

    out_ipynb = Path(out_ipynb)
    out_ipynb.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_ipynb.parent, prefix=f".{out_ipynb.stem}.", suffix=".ipynb")
    os.close(fd)
    try:
        papermill.execute_notebook(
            str(notebook),
            tmp,
            parameters=parameters,
            kernel_name=kernel,
            cwd=str(cwd) if cwd else None,
            progress_bar=False,
        )
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes it private; give it a normal file's mode
        os.replace(tmp, out_ipynb)
    finally:
        Path(tmp).unlink(missing_ok=True)
    html, _ = HTMLExporter(embed_images=True).from_filename(str(out_ipynb))
    out_html = out_ipynb.with_suffix(".html")
    with atomic_path(out_html) as path:
        path.write_text(html)
    return out_ipynb, out_html
